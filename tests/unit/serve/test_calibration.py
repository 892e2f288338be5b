"""A policy's thresholds are bound to the model versions they were calibrated on: the stack
uses the version of its policy calibrated on what it serves, and says so when none is."""

import logging

import pytest
from prometheus_client import CollectorRegistry

from tests.fakes import ROOT, SUPPORT, http_client, support_service
from tierserve.errors import ConfigError
from tierserve.hardware import HostCapability
from tierserve.observe.metrics import TIER_CALIBRATED, TierserveMetrics
from tierserve.policy.spec import Policy
from tierserve.serve.calibration import calibrated_for

INT8 = {
    "small": "HuggingFaceTB/SmolLM2-135M-Instruct@int8-w8a8",
    "medium": "Qwen/Qwen2.5-Coder-0.5B-Instruct@int8-w8a8",
    "large": "Qwen/Qwen2.5-Coder-0.5B-Instruct@fp32",
}
GPTQ = {**INT8, "small": INT8["small"].replace("int8-w8a8", "gptq-w4a16")}
GPTQ["medium"] = INT8["medium"].replace("int8-w8a8", "gptq-w4a16")


def calibrated(on: dict[str, str], version: str, **more: object) -> Policy:
    return SUPPORT.model_copy(update={"calibrated_on": on, "version": version, **more})


def test_the_version_calibrated_on_the_served_models_is_used() -> None:
    on_int8, on_gptq = calibrated(INT8, "p+int8"), calibrated(GPTQ, "p+gptq")
    assert calibrated_for([on_int8, on_gptq], GPTQ).version == "p+gptq"
    assert calibrated_for([on_int8, on_gptq], INT8).version == "p+int8"
    assert on_int8.uncalibrated(GPTQ) == {
        "small": (INT8["small"], GPTQ["small"]),
        "medium": (INT8["medium"], GPTQ["medium"]),
    }


def test_no_matching_calibration_warns_or_refuses_when_required(
    caplog: pytest.LogCaptureFixture,
) -> None:
    on_int8 = calibrated(INT8, "p+int8")
    with caplog.at_level(logging.WARNING, logger="tierserve.calibration"):
        assert calibrated_for([on_int8], GPTQ) is on_int8
    assert "was not calibrated on the served models (small: calibrated on " in caplog.text
    strict = calibrated(INT8, "p+int8", require_calibrated_models=True)
    with pytest.raises(ConfigError, match=r"medium: calibrated on .*@int8-w8a8, served .*@gptq"):
        calibrated_for([strict], GPTQ)


def test_the_policy_refuses_a_calibration_of_an_unknown_tier() -> None:
    data = SUPPORT.model_dump(by_alias=True)
    data["calibrated_on"] = {"tiny": "x"}
    with pytest.raises(ValueError, match=r"calibrated_on names unknown tiers \['tiny'\]"):
        Policy.model_validate(data)


def test_models_say_whether_each_tier_serves_what_the_thresholds_were_calibrated_on(
    tmp_path: object,
) -> None:
    calibrated = SUPPORT.model_copy(update={"calibrated_on": INT8})
    chat, _, _ = support_service(tmp_path, policy=calibrated)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    client = http_client(chat, tiers=INT8, served=GPTQ, metrics=TierserveMetrics(registry))
    cards = {card["id"]: card["tierserve"] for card in client.get("/v1/models").json()["data"]}
    assert cards["tierserve/small"]["calibrated"] is False
    assert cards["tierserve/small"]["calibrated_on"] == INT8["small"]
    assert cards["tierserve/large"]["calibrated"] is True


def test_the_calibration_gauge_marks_a_tier_serving_another_model() -> None:
    registry = CollectorRegistry()
    metrics = TierserveMetrics(registry)
    metrics.observe_calibration("small", GPTQ["small"], INT8["small"])
    metrics.observe_calibration("large", INT8["large"], INT8["large"])
    labels = {"tier": "small", "served": GPTQ["small"], "calibrated_on": INT8["small"]}
    assert registry.get_sample_value(TIER_CALIBRATED, labels) == 0
    same = {"tier": "large", "served": INT8["large"], "calibrated_on": INT8["large"]}
    assert registry.get_sample_value(TIER_CALIBRATED, same) == 1


def test_policy_check_compares_the_calibration_with_what_this_host_serves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On an AVX-512 host the quantized tiers are GPTQ and the int8-calibrated policy is
    flagged; on an AVX2-only host they are int8 and it is not."""
    from tests.fakes import ROOT
    from tierserve.cli import main
    from tierserve.config import load_config
    from tierserve.engine.resolve import expected_model_versions
    from tierserve.hardware import detect_host

    config = ROOT / "serve_configs/local-cpu.yaml"
    policy = ROOT / "serve_configs/policies/support.yaml"
    assert main(["policy", "check", str(policy), "--config", str(config), "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    served = expected_model_versions(load_config(config), detect_host())
    if served["small"].endswith("@gptq-w4a16"):
        assert f"medium: calibrated on {INT8['medium']}, served {GPTQ['medium']}" in out
    else:
        assert served == INT8 and "serves: calibrated" in out


@pytest.mark.parametrize(
    ("host", "served"),
    [(HostCapability("cpu", "AVX512"), GPTQ), (HostCapability("cpu", "AVX2"), INT8)],
)
def test_the_embedded_default_uses_its_own_calibration_on_either_format(
    host: HostCapability, served: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tierserve.config import load_config
    from tierserve.engine.resolve import expected_model_versions
    from tierserve.serve.calibration import policy_for_host

    monkeypatch.chdir(ROOT)  # the config's policy paths are relative to the repository
    config = load_config("serve_configs/local-cpu.yaml")
    assert expected_model_versions(config, host) == served
    chosen = policy_for_host(config, host)
    assert chosen.calibrated_on == served and not chosen.uncalibrated(served)
