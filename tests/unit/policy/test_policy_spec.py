import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tests.fakes import STACK_TIERS
from tierserve.errors import ConfigError
from tierserve.policy.eligibility import resolve_tenant
from tierserve.policy.spec import Policy, load_policy

ROOT = Path(__file__).resolve().parents[3]
SUPPORT = ROOT / "serve_configs/policies/support.yaml"


def support_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SUPPORT.read_text())
    return data


def load(tmp_path: Path, data: dict[str, Any]) -> Policy:
    for files in ("schemas", "routers"):  # the policy's relative files
        shutil.copytree(SUPPORT.parent / files, tmp_path / files, dirs_exist_ok=True)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_policy(path, STACK_TIERS)


def route(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in data["routes"] if r["name"] == name)


def test_support_policy_loads_and_reads_as_intended() -> None:
    policy = load_policy(SUPPORT, STACK_TIERS)
    northbank = next(t for t in policy.tenants if t.id == "northbank")
    assert northbank.compliance == "regulated" and "small" not in (northbank.allowed_tiers or [])
    sensitive = next(r for r in policy.routes if r.name == "policy-sensitive")
    assert sensitive.ladder[0].tier == "large" and sensitive.ladder[-1].action == "human_review"
    extraction = next(r for r in policy.routes if r.name == "extraction")
    assert extraction.ladder[0].tier == "medium" and extraction.ladder[0].constrained
    # Medium's judgement of a severity is marked for review, not escalated (large is no better).
    assert extraction.ladder[0].review_threshold("severity") == 0.8
    assert extraction.ladder[1].min_field_confidence == 0.7
    assert extraction.ladder[1].tier == "large" and extraction.ladder[1].constrained


def test_a_ladder_that_moves_down_is_refused(tmp_path: Path) -> None:
    data = support_data()
    route(data, "drafting")["ladder"] = [{"tier": "large"}, {"tier": "medium", "max_tokens": 9}]
    with pytest.raises(ConfigError, match="moves down from 'large' to 'medium'"):
        load(tmp_path, data)


def test_repeating_the_same_call_is_refused_with_the_fix(tmp_path: Path) -> None:
    data = support_data()
    route(data, "drafting")["ladder"] = [{"tier": "medium"}, {"tier": "medium"}]
    with pytest.raises(ConfigError, match="repeats the previous call on 'medium'"):
        load(tmp_path, data)


def test_same_tier_with_constrained_decoding_is_a_real_escalation(tmp_path: Path) -> None:
    data = support_data()
    route(data, "extraction")["ladder"] = [
        {"tier": "medium", "validators": ["schema"]},
        {"tier": "medium", "constrained": True, "validators": ["schema"]},
    ]
    assert load(tmp_path, data).version


def test_unknown_tier_in_a_ladder_is_named(tmp_path: Path) -> None:
    data = support_data()
    route(data, "faq")["ladder"][0]["tier"] = "tiny"
    with pytest.raises(ConfigError, match="unknown tier 'tiny'"):
        load(tmp_path, data)


def test_every_task_class_needs_a_route(tmp_path: Path) -> None:
    data = support_data()
    data["routes"] = [r for r in data["routes"] if r["name"] != "tools"]
    with pytest.raises(ConfigError, match="tool_use"):
        load(tmp_path, data)


def test_action_steps_must_end_the_ladder(tmp_path: Path) -> None:
    data = support_data()
    route(data, "drafting")["ladder"].insert(0, {"action": "human_review"})
    with pytest.raises(ConfigError, match="must be the last step"):
        load(tmp_path, data)


def test_constrained_step_needs_a_schema(tmp_path: Path) -> None:
    data = support_data()
    route(data, "faq")["ladder"][0]["constrained"] = True
    with pytest.raises(ConfigError, match="needs the route's `schema`"):
        load(tmp_path, data)


def test_default_tenant_must_exist(tmp_path: Path) -> None:
    data = support_data()
    data["default_tenant"] = "nobody"
    with pytest.raises(ConfigError, match="default_tenant 'nobody'"):
        load(tmp_path, data)


def test_bad_validator_name_is_named(tmp_path: Path) -> None:
    data = support_data()
    route(data, "faq")["ladder"][0]["validators"] = ["vibes"]
    with pytest.raises(ConfigError, match="'vibes'"):
        load(tmp_path, data)


def test_api_keys_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    data = loaded_support_data()
    bank = next(t for t in data["tenants"] if t["id"] == "northbank")
    bank["api_keys"], bank["api_keys_env"] = [], "TIERSERVE_API_KEYS_NORTHBANK"
    monkeypatch.delenv("TIERSERVE_API_KEYS_NORTHBANK", raising=False)
    with pytest.raises(ValidationError, match=r"\$TIERSERVE_API_KEYS_NORTHBANK, which is not set"):
        Policy.model_validate(data)
    monkeypatch.setenv("TIERSERVE_API_KEYS_NORTHBANK", "sk-a, sk-b")
    policy = Policy.model_validate(data)
    assert resolve_tenant(policy, "sk-b").id == "northbank"
    assert resolve_tenant(policy, "sk-northbank-demo").id == "public"


def loaded_support_data() -> dict[str, Any]:
    """The shipped policy as data, its schema files read in."""
    return load_policy(SUPPORT, STACK_TIERS).model_dump(mode="json", by_alias=True)


def test_the_validator_registry_is_the_one_list_of_validator_names() -> None:
    from tierserve.policy.spec import LadderStepSpec
    from tierserve.validate.checks import CHECKS

    step = LadderStepSpec(tier="small", validators=sorted(CHECKS))
    assert step.validators == sorted(CHECKS)
    with pytest.raises(
        ValueError, match=r"unknown validator 'nonempty': use one of \['copied', 'currencies'"
    ):
        LadderStepSpec(tier="small", validators=["nonempty"])
