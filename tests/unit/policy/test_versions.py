"""Policy versions are written through the policy model: what a file named stays named, keys
from the environment stay out, and the written file reads back as the same policy."""

import shutil
from pathlib import Path

import pytest
import yaml

from tests.fakes import ROOT, STACK_TIERS
from tierserve.errors import ConfigError
from tierserve.policy.spec import load_policy
from tierserve.policy.versions import file_data, route_named, with_steps, write_version

SHIPPED = sorted((ROOT / "serve_configs/policies").glob("*.yaml"))


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "serve_configs/policies", folder)
    return folder


@pytest.mark.parametrize("shipped", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_policy_reads_back_unchanged_from_the_version_written(
    shipped: Path, policies: Path
) -> None:
    source = policies / shipped.name
    policy = load_policy(source, STACK_TIERS)
    out = source.with_name(f"{source.stem}-again.yaml")
    written = write_version(policy, source=source, out=out, provenance="again", suffix="again")
    again = load_policy(out, STACK_TIERS)
    assert written.version.startswith(f"{policy.version}+again.")
    assert again.version == written.version
    assert again.model_copy(update={"version": policy.version}) == policy


def test_a_version_names_the_files_its_source_named_and_lists_no_tiers(policies: Path) -> None:
    source = policies / "support.yaml"
    written = file_data(load_policy(source, STACK_TIERS))
    assert written["task_classifier"] == {"file": "routers/support-tasks.json"}
    assert written["question_kinds"]["file"] == "routers/general-kinds.json"
    assert "kinds" not in written["question_kinds"]
    assert written["schemas"]["invoice"]["json_schema_file"] == "schemas/invoice.json"
    assert "json_schema" not in written["schemas"]["invoice"]
    assert "tiers" not in written


def test_keys_read_from_the_environment_stay_out_of_the_version(
    policies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = policies / "support.yaml"
    data = yaml.safe_load(source.read_text())
    bank = next(t for t in data["tenants"] if t["id"] == "northbank")
    bank["api_keys"], bank["api_keys_env"] = ["sk-in-the-file"], "TIERSERVE_TEST_KEYS"
    source.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("TIERSERVE_TEST_KEYS", "sk-from-the-secret")
    policy = load_policy(source, STACK_TIERS)
    assert "sk-from-the-secret" in next(t for t in policy.tenants if t.id == "northbank").api_keys
    out = policies / "with-keys.yaml"
    write_version(policy, source=source, out=out, provenance="", suffix="keys")
    assert "sk-from-the-secret" not in out.read_text()
    again = next(t for t in load_policy(out, STACK_TIERS).tenants if t.id == "northbank")
    assert again.api_keys == ["sk-in-the-file", "sk-from-the-secret"]


def test_a_typed_edit_that_breaks_a_ladder_rule_is_refused_before_anything_is_written(
    policies: Path,
) -> None:
    source = policies / "support.yaml"
    policy = load_policy(source, STACK_TIERS)
    # Every step on the same tier: the ladder would repeat a call, which a policy refuses.
    same = with_steps(policy, "faq", lambda step: step.model_copy(update={"tier": "small"}))
    out = policies / "broken.yaml"
    with pytest.raises(ConfigError, match="route 'faq' step 1: repeats the previous call"):
        write_version(same, source=source, out=out, provenance="", suffix="broken")
    assert not out.exists()
    with pytest.raises(ConfigError, match="no route 'nope'"):
        route_named(policy, "nope")
