"""vLLM's own benchmark client, unmodified, against the gateway: the endpoint works with the tools
engineers already measure vLLM with, and its TTFT is time to the first generated token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierserve.bench.load import Load, LoadSettings, client_command, run_load
from tierserve.bench.targets import Target
from tierserve.config import StackConfig
from tierserve.engine.resolve import resolve_tier
from tierserve.hardware import detect_host

from .conftest import first_stream_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_vllm_bench_serve_streams_fixed_length_answers_through_a_pinned_tier(
    base_url: str, stack_config: StackConfig, tmp_path: Path
) -> None:
    small = stack_config.tiers[0]
    tokenizer = resolve_tier(small, detect_host(), stack_config.model_cache_dir).model_path
    settings = LoadSettings(
        input_len=32, output_len=8, min_prompts=4, prompts_per_slot=2, warmups=0
    )
    target = Target("pinned/small", "tierserve", f"tierserve/{small.name}", "random", small.name)
    command = client_command(
        target,
        Load(concurrency=2),
        settings,
        base_url=base_url,
        tokenizer=tokenizer,
        labelled_path=tmp_path / "unused.jsonl",
        result_dir=tmp_path,
    )
    result = run_load(command, tmp_path / "pinned-small_c2.json", tmp_path / "client.log")
    assert result["completed"] == 4 and result["failed"] == 0, result.get("errors")
    # --ignore-eos reached the engine: every answer is exactly the asked length.
    assert result["output_lens"] == [8] * 4
    assert result["total_output_tokens"] == 32
    # The first chunk carries the first token, so TTFT is a real share of the request, and the
    # client saw one gap per later token.
    assert 0 < result["mean_ttft_ms"] < result["mean_e2el_ms"]
    assert all(len(itls) >= 1 for itls in result["itls"])


def test_the_first_streamed_chunk_carries_the_role_and_the_first_text(base_url: str) -> None:
    body = {
        "model": "tierserve/small",
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
    }
    (first,) = first_stream_lines(base_url, body, 1)
    delta = json.loads(first.removeprefix("data: "))["choices"][0]["delta"]
    assert delta["role"] == "assistant"
    assert delta["content"]
