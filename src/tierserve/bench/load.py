"""One load run: vLLM's benchmark client against one target at one load level.

The client (``vllm bench serve``) streams every request, so its TTFT is the first token's, and
writes the field's keys (``mean_ttft_ms``, ``p99_itl_ms``, ``request_goodput``, ...). Closed
loop: a fixed number of requests in flight (``--max-concurrency``). Open loop: Poisson arrivals
at a request rate.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tierserve.bench.targets import Target
from tierserve.errors import TierUnavailableError

__all__ = ["Load", "LoadSettings", "client_command", "run_load"]


class LoadSettings(BaseModel):
    """Prompt shapes and service-level objectives shared by every run of a benchmark."""

    input_len: int = Field(default=64, ge=1, description="Random prompts: input tokens.")
    output_len: int = Field(
        default=32, ge=1, description="Random prompts: output tokens (fixed with ignore_eos)."
    )
    prompts_per_slot: int = Field(
        default=4, ge=1, description="Requests per run = max(min_prompts, this x concurrency)."
    )
    min_prompts: int = Field(default=16, ge=1)
    warmups: int = Field(default=2, ge=0, description="Unmeasured requests before each run.")
    slo_ttft_ms: float = Field(default=2000, gt=0, description="Goodput: TTFT limit.")
    slo_tpot_ms: float = Field(default=250, gt=0, description="Goodput: TPOT limit.")
    task_hint: str | None = Field(
        default="faq", description="metadata.task sent with labelled prompts (a route's hint)."
    )


@dataclass(frozen=True, slots=True)
class Load:
    """A closed loop at ``concurrency`` requests in flight, or an open loop at ``rate`` req/s."""

    concurrency: int | None = None
    rate: float | None = None

    @property
    def label(self) -> str:
        return f"c{self.concurrency}" if self.concurrency is not None else f"r{self.rate:g}"


def client_command(
    target: Target,
    load: Load,
    settings: LoadSettings,
    *,
    base_url: str,
    tokenizer: str,
    labelled_path: Path,
    result_dir: Path,
) -> list[str]:
    if load.concurrency is not None:
        prompts = max(settings.min_prompts, settings.prompts_per_slot * load.concurrency)
        pacing = ["--max-concurrency", str(load.concurrency), "--request-rate", "inf"]
    else:
        prompts = settings.min_prompts * 2
        pacing = ["--request-rate", f"{load.rate:g}", "--burstiness", "1.0"]
    command = [
        sys.executable, "-m", "tierserve.bench.vllm_bench",
        "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
        "--base-url", base_url, "--model", target.model, "--tokenizer", tokenizer,
        "--label", target.name, "--temperature", "0", "--seed", "0",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
        "--goodput", f"ttft:{settings.slo_ttft_ms:g}", f"tpot:{settings.slo_tpot_ms:g}",
        "--save-result", "--save-detailed", "--result-dir", str(result_dir),
        "--result-filename", f"{target.name.replace('/', '-')}_{load.label}.json",
        *pacing,
    ]  # fmt: skip
    if target.dataset == "random":
        command += [
            "--dataset-name", "random", "--num-prompts", str(prompts),
            "--random-input-len", str(settings.input_len),
            "--random-output-len", str(settings.output_len),
            "--ignore-eos", "--num-warmups", str(settings.warmups),
        ]  # fmt: skip
    else:
        rows = len(labelled_path.read_text().splitlines())
        command += [
            "--dataset-name", "custom", "--dataset-path", str(labelled_path),
            "--num-prompts", str(rows), "--skip-chat-template", "--disable-shuffle",
            "--num-warmups", "0",
        ]  # fmt: skip
        if settings.task_hint is not None and target.server == "tierserve":
            command += ["--extra-body", json.dumps({"metadata": {"task": settings.task_hint}})]
    return command


def run_load(command: list[str], result_path: Path, log_path: Path) -> dict[str, Any]:
    """Run the client; its JSON result, with the exact command line added."""
    with log_path.open("ab") as log:
        log.write(f"\n$ {shlex.join(command)}\n".encode())
        log.flush()
        finished = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if finished.returncode != 0 or not result_path.exists():
        raise TierUnavailableError(
            "bench",
            f"the benchmark client exited with {finished.returncode}",
            hint=f"read {log_path}",
        )
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["command"] = shlex.join(command)
    return result
