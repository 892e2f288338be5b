"""The serving benchmark's plan: which targets, the servers' command lines, the client's."""

import shlex
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.fakes import THREE
from tierserve.bench.load import Load, LoadSettings, client_command
from tierserve.bench.targets import (
    bench_serve_config,
    direct_server_command,
    targets_for,
)
from tierserve.cli import main
from tierserve.config import parse_config
from tierserve.engine.resolve import ResolvedTier
from tierserve.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_targets_compare_one_tier_direct_and_pinned_and_the_cascade_on_labelled_prompts() -> None:
    targets = {t.name: t for t in targets_for(THREE, "small")}
    assert list(targets) == [
        "direct/small", "pinned/small", "pinned/large", "cascade", "small-only", "large-only",
    ]  # fmt: skip
    assert targets["pinned/small"].model == "tierserve/small"
    assert targets["cascade"].model == "tierserve" and targets["cascade"].dataset == "labelled"
    with pytest.raises(ConfigError, match="'tiny' is not a tier"):
        targets_for(THREE, "tiny")


def test_the_direct_server_runs_the_tiers_engine_settings() -> None:
    tier = parse_config(
        {
            "tiers": [
                {
                    "name": "small",
                    "model": "/m/s",
                    "max_model_len": 2048,
                    "kv_cache_memory_bytes": 268435456,
                    "max_num_seqs": 8,
                    "engine_args": {"block_size": 32},
                }
            ],
            "policy": "serve_configs/policies/cascade.yaml",
        }
    ).tiers[0]
    resolved = ResolvedTier("small", "/models/s-int8", "s@int8", "int8", "bfloat16", "int8: AVX2")
    command = direct_server_command(tier, resolved, port=8100)
    line = shlex.join(command)
    assert "-m vllm.entrypoints.openai.api_server --model /models/s-int8" in line
    for expected in (
        "--dtype bfloat16", "--max-model-len 2048", "--kv-cache-memory-bytes 268435456",
        "--max-num-seqs 8", "--block-size 32", "--enforce-eager", "--port 8100",
    ):  # fmt: skip
        assert expected in line


def test_the_stack_keeps_this_runs_records_in_the_run_folder(tmp_path: Path) -> None:
    data = bench_serve_config(ROOT / "serve_configs/local-cpu.yaml", tmp_path, port=8101)
    args = data["applications"][0]["args"]
    assert data["http_options"]["port"] == 8101
    assert args["observe"]["decision_log_path"] == str(tmp_path / "decisions.sqlite")
    assert (
        args["tiers"]
        == yaml.safe_load((ROOT / "serve_configs/local-cpu.yaml").read_text())["applications"][0][
            "args"
        ]["tiers"]
    )


def test_the_client_streams_fixed_length_random_prompts_at_a_concurrency(tmp_path: Path) -> None:
    pinned = targets_for(THREE, "small")[1]
    command = client_command(
        pinned, Load(concurrency=8), LoadSettings(), base_url="http://h:1", tokenizer="/tok",
        labelled_path=tmp_path / "l.jsonl", result_dir=tmp_path,
    )  # fmt: skip
    line = shlex.join(command)
    assert "-m tierserve.bench.vllm_bench --backend openai-chat" in line
    assert "--max-concurrency 8 --request-rate inf" in line
    assert "--num-prompts 32" in line and "--ignore-eos" in line and "--temperature 0" in line
    assert "--result-filename pinned-small_c8.json" in line


def test_labelled_prompts_go_in_order_with_the_routes_task_hint(tmp_path: Path) -> None:
    labelled = tmp_path / "l.jsonl"
    labelled.write_text('{"prompt": "a", "output_tokens": 48}\n' * 3)
    cascade = targets_for(THREE, "small")[3]
    command = client_command(
        cascade, Load(rate=2.0), LoadSettings(), base_url="http://h:1", tokenizer="/tok",
        labelled_path=labelled, result_dir=tmp_path,
    )  # fmt: skip
    line = shlex.join(command)
    assert "--dataset-name custom" in line and "--disable-shuffle" in line
    assert "--num-prompts 3" in line and "--request-rate 2 --burstiness 1.0" in line
    assert """--extra-body '{"metadata": {"task": "faq"}}'""" in line


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--concurrency", "1,x"], "cannot read '1,x'"),
        (["--concurrency", "0"], "give positive numbers"),
        (["--direct-tier", "tiny"], "'tiny' is not a tier"),
    ],
)
def test_bad_bench_arguments_are_one_line_errors(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(ROOT / "serve_configs/local-cpu.yaml")
    assert main(["bench", config, "--out", str(tmp_path), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_the_plan_sweeps_every_random_target_and_opens_the_loop_only_on_the_compared_tier(
    tmp_path: Path,
) -> None:
    from tierserve.bench.run import BenchOptions, _plan

    options = BenchOptions(
        serve_config=tmp_path / "unused.yaml",
        out=tmp_path,
        labelled=tmp_path / "questions.jsonl",
        concurrencies=(1, 16),
        rates=(1.0,),
    )
    plan = [(t.name, load.label) for t, load in _plan(options, targets_for(THREE, "small"))]
    assert plan == [
        ("direct/small", "c1"), ("direct/small", "c16"), ("direct/small", "r1"),
        ("pinned/small", "c1"), ("pinned/small", "c16"), ("pinned/small", "r1"),
        ("pinned/large", "c1"), ("pinned/large", "c16"),
        ("cascade", "c4"), ("small-only", "c4"), ("large-only", "c4"),
    ]  # fmt: skip
    overhead_only = replace(options, labelled=None)
    names = {t.name for t, _ in _plan(overhead_only, targets_for(THREE, "small"))}
    assert names == {"direct/small", "pinned/small", "pinned/large"}
