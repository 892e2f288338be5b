import pickle
from pathlib import Path

import pytest

from tests.fakes import SUPPORT
from tierserve.config import TierConfig, load_config, parse_config
from tierserve.errors import ConfigError, TierUnavailableError
from tierserve.hardware import HostCapability
from tierserve.models.choice import resolve_format
from tierserve.policy.spec import Policy, load_policy

ROOT = Path(__file__).resolve().parents[2]
AVX2 = HostCapability(accelerator="cpu", cpu_isa="AVX2")
AVX512 = HostCapability(accelerator="cpu", cpu_isa="AVX512")
GPU = HostCapability(accelerator="cuda", cpu_isa="AVX2")


def tiers(**small: object) -> dict[str, object]:
    return {
        "tiers": [
            {
                "name": "small",
                "model": "embedded:smollm2-135m-instruct",
                "quantization": "auto",
                **small,
            },
            {"name": "large", "model": "embedded:qwen2.5-coder-0.5b-instruct"},
        ],
        "policy": "serve_configs/policies/cascade.yaml",
    }


def test_shipped_serve_config_is_valid() -> None:
    config = load_config(ROOT / "serve_configs/local-cpu.yaml")
    assert [t.name for t in config.tiers] == ["small", "medium", "large"]
    assert all(t.kv_cache_memory_bytes for t in config.tiers)


def test_bad_enum_value_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(tiers(quantization="gptq4"))
    assert "tiers.0.quantization" in str(caught.value)
    assert "'gptq4'" in str(caught.value)


def test_thresholds_and_their_signal_are_refused_in_the_stack_config_with_where_they_went() -> None:
    with pytest.raises(ConfigError, match=r"tiers\.0: .*confidence_threshold moved to the policy"):
        parse_config(tiers(confidence_threshold=0.5))
    with pytest.raises(ConfigError, match=r"confidence_quantile moved to the policy.*conf_q10"):
        parse_config({**tiers(), "cascade": {"confidence_quantile": 0.1}})
    with pytest.raises(ConfigError, match=r"policy: Field required"):
        parse_config({"tiers": tiers()["tiers"]})


def test_a_policy_reads_its_tiers_from_the_stack_and_refuses_a_list_of_its_own(
    tmp_path: Path,
) -> None:
    two = parse_config(tiers())
    with pytest.raises(ConfigError, match=r"unknown tier 'medium'; tiers are \['small', 'large'\]"):
        load_policy(ROOT / "serve_configs/policies/cascade.yaml", two.tier_names)
    listed = tmp_path / "listed.yaml"
    listed.write_text(
        "tiers: [small, large]\n" + (ROOT / "serve_configs/policies/cascade.yaml").read_text()
    )
    with pytest.raises(ConfigError, match="the stack config owns its tiers") as caught:
        load_policy(listed, ["small", "medium", "large"])
    assert "remove `tiers:`" in str(caught.value)
    assert load_policy(
        ROOT / "serve_configs/policies/cascade.yaml", ["small", "medium", "large"]
    ).tiers == ["small", "medium", "large"]


def test_a_policy_gates_only_on_a_signal_the_gateway_measures() -> None:
    assert SUPPORT.confidence_signal == "conf_q10" and SUPPORT.confidence_quantile == 0.1
    data = SUPPORT.model_dump()
    with pytest.raises(ValueError, match=r"cannot gate on 'mean_logprob'; use one of \['conf_q0'"):
        Policy.model_validate({**data, "confidence_signal": "mean_logprob"})
    assert (
        Policy.model_validate({**data, "confidence_signal": "conf_q0"}).confidence_quantile == 0.0
    )


def test_deployment_options_are_typed_and_reach_serve() -> None:
    config = parse_config(
        tiers(
            deployment={
                "num_replicas": None,
                "autoscaling_config": {"min_replicas": 1, "max_replicas": 4},
                "max_queued_requests": 32,
            }
        )
    )
    options = config.tiers[0].deployment.serve_options()
    assert options["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4}
    assert options["max_queued_requests"] == 32 and "num_replicas" not in options
    # Serve's own back-pressure answer: 503 with Retry-After when the queue is full.
    assert options["backpressure_config"] == {"status_code": 503, "retry_after_s": 2.0}
    assert config.gateway.deployment.serve_options()["max_queued_requests"] == 256
    assert config.gateway.deployment.max_ongoing_requests == 256
    with pytest.raises(ConfigError, match="not both"):
        parse_config(tiers(deployment={"num_replicas": 2, "autoscaling_config": {}}))


def test_duplicate_tier_names_are_refused() -> None:
    data = tiers()
    data["tiers"][1]["name"] = "small"  # type: ignore[index]
    with pytest.raises(ConfigError, match="unique"):
        parse_config(data)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"tiers\.0\.kv_cache"):
        parse_config(tiers(kv_cache=1))


def test_auto_quantization_only_for_embedded_models() -> None:
    with pytest.raises(ConfigError, match="only for embedded models"):
        parse_config(tiers(model="/models/my-gptq"))


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("host", "expected"), [(AVX2, "int8"), (AVX512, "gptq"), (GPU, "gptq")])
def test_auto_picks_format_by_capability_and_says_why(host: HostCapability, expected: str) -> None:
    tier = parse_config(tiers()).tiers[0]
    quantization, why = resolve_format(tier, host)
    assert quantization == expected
    assert host.cpu_isa in why or host.accelerator in why


def test_explicit_gptq_on_avx2_is_a_config_error_with_fix() -> None:
    tier = parse_config(tiers(quantization="gptq")).tiers[0]
    with pytest.raises(ConfigError, match="use quantization: auto or int8"):
        resolve_format(tier, AVX2)


def test_errors_survive_pickling_across_processes() -> None:
    error = TierUnavailableError("small", "engine died", hint="retry")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, TierUnavailableError)
    assert copy.tier == "small" and copy.http_status == 503 and "retry" in str(copy)


def test_serve_config_import_path_builds_the_app() -> None:
    """`serve run serve_configs/local-cpu.yaml` imports this path and calls it with `args`."""
    import importlib

    import yaml
    from ray.serve import Application

    document = yaml.safe_load((ROOT / "serve_configs/local-cpu.yaml").read_text())
    application = document["applications"][0]
    module_name, _, attribute = application["import_path"].partition(":")
    builder = getattr(importlib.import_module(module_name), attribute)
    assert isinstance(builder(application["args"]), Application)


def test_serve_config_with_bad_args_fails_before_anything_starts() -> None:
    from tierserve.serve.app import build_app

    with pytest.raises(ConfigError, match=r"tiers\.0\.max_model_len"):
        build_app({"tiers": [{"name": "small", "model": "/m", "max_model_len": 1}]})


def test_cuda_graphs_on_gpu_and_eager_on_cpu_unless_the_tier_says() -> None:
    from tierserve.engine.resolve import resolve_tier

    tier = TierConfig(name="large", model="/models/large")
    assert resolve_tier(tier, GPU, Path("/cache")).enforce_eager is False
    assert resolve_tier(tier, AVX2, Path("/cache")).enforce_eager is True
    eager = tier.model_copy(update={"enforce_eager": True})
    assert resolve_tier(eager, GPU, Path("/cache")).enforce_eager is True


def test_engine_arguments_pass_through_by_their_vllm_names() -> None:
    tier = parse_config(tiers(engine_args={"block_size": 16, "load_format": "dummy"})).tiers[0]
    assert tier.engine_args == {"block_size": 16, "load_format": "dummy"}
    with pytest.raises(ConfigError, match=r"\['blok_size'\] are not vLLM engine arguments"):
        parse_config(tiers(engine_args={"blok_size": 16}))
    with pytest.raises(ConfigError, match="set max_model_len on the tier instead"):
        parse_config(tiers(engine_args={"max_model_len": 4096}))


def test_a_split_model_gets_one_gpu_per_worker_in_a_placement_group() -> None:
    whole = TierConfig(name="small", model="/m", num_gpus=0.25)
    assert whole.ray_options() == {"ray_actor_options": {"num_cpus": 0.25, "num_gpus": 0.25}}
    split = TierConfig(name="large", model="/m", tensor_parallel_size=4, num_cpus=1)
    options = split.ray_options()
    assert options["ray_actor_options"]["num_gpus"] == 0
    assert options["placement_group_bundles"] == [{"CPU": 1}, *[{"GPU": 1}] * 4]
    with pytest.raises(ValueError, match="leave num_gpus at 0 or set it to 4"):
        TierConfig(name="large", model="/m", tensor_parallel_size=4, num_gpus=0.5)


def test_a_tier_goes_to_the_nodes_that_declare_its_resources() -> None:
    placed = TierConfig(name="small", model="/m", num_gpus=1, resources={"h100_group": 1})
    assert placed.ray_options()["ray_actor_options"]["resources"] == {"h100_group": 1}
    split = placed.model_copy(update={"num_gpus": 0, "tensor_parallel_size": 2})
    assert split.ray_options()["placement_group_bundles"][0] == {"CPU": 0.25, "h100_group": 1}


def test_a_database_url_is_checked_and_never_carries_a_password() -> None:
    url = "postgresql+psycopg://tierserve@db:5432/tierserve"
    assert parse_config({**tiers(), "observe": {"database_url": url}}).observe.database_url == url
    with pytest.raises(ConfigError, match="give it as PGPASSWORD"):
        parse_config({**tiers(), "observe": {"database_url": "postgresql://u:hunter2@db/x"}})
    with pytest.raises(ConfigError, match="'mysql' is not supported"):
        parse_config({**tiers(), "observe": {"database_url": "mysql://u@db/x"}})


def test_gateway_replicas_must_fit_the_database_connections() -> None:
    shared = {
        **tiers(),
        "observe": {"database_url": "postgresql+psycopg://tierserve@db:5432/tierserve"},
        "gateway": {
            "deployment": {"num_replicas": None, "autoscaling_config": {"max_replicas": 8}}
        },
    }
    # 8 replicas x (5 + 5) = 80 connections: within PostgreSQL's default 100.
    assert parse_config(shared).gateway.deployment.most_replicas == 8
    # SQLAlchemy's own default pool (5 + 10) would need 120.
    greedy = {**shared, "observe": {**shared["observe"], "database_max_overflow": 10}}
    with pytest.raises(ConfigError, match=r"8 gateway replicas x .* = 120 database connections"):
        parse_config(greedy)
    # Without a shared database each replica has its own SQLite file: nothing to count.
    alone = {**greedy, "observe": {"database_max_overflow": 10}}
    assert parse_config(alone).observe.database_url is None


def test_tiers_sharing_a_gpu_need_their_own_kv_budget() -> None:
    shared = tiers(num_gpus=0.25)
    with pytest.raises(
        ConfigError, match=r"tiers \['small'\] share a GPU .* kv_cache_memory_bytes"
    ):
        parse_config(shared)
    budgeted = tiers(num_gpus=0.25, kv_cache_memory_bytes=5 * 2**30)
    assert parse_config(budgeted).tiers[0].kv_cache_memory_bytes == 5 * 2**30
    for shipped in ("gpu-single-80gb", "gpu-cluster"):
        config = load_config(ROOT / f"serve_configs/{shipped}.yaml")
        assert all(t.kv_cache_memory_bytes for t in config.tiers if 0 < t.num_gpus < 1)
