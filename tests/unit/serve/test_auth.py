"""API keys: hashed keys find their tenant, a keyed policy refuses strangers with OpenAI's 401
and records the refusal without the key, and /metrics, explain and /v1/models follow."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from tests.fakes import FAQ, SUPPORT, THREE, FaqPredictor, ListRecorder, ScriptedEngine, http_client
from tierserve.api.service import ChatService
from tierserve.cli import main
from tierserve.observe.database import open_engine
from tierserve.observe.decision_log import DecisionLog
from tierserve.observe.metrics import TierserveMetrics
from tierserve.observe.recorder import DurableRecorder
from tierserve.policy.eligibility import key_owner
from tierserve.policy.keys import hash_key, key_matches, new_key
from tierserve.policy.spec import AuthSpec, Policy
from tierserve.policy.step import Outcome

HASHED_KEY = new_key()
BODY = {"model": "tierserve", "messages": [{"role": "user", "content": FAQ}], "user": "u-42"}


def keyed(**auth: bool) -> Policy:
    """The support policy with keys required, and a hashed key for tenant internal."""
    tenants = [
        t.model_copy(update={"api_key_hashes": [hash_key(HASHED_KEY)]}) if t.id == "internal" else t
        for t in SUPPORT.tenants
    ]
    spec = AuthSpec(require_keys=True, **auth)
    return SUPPORT.model_copy(update={"tenants": tenants, "auth": spec})


def client(policy: Policy, recorder: Any = None) -> tuple[TestClient, ListRecorder]:
    engines = {n: ScriptedEngine(n, text=f"{n} answer") for n in ("small", "medium", "large")}
    listed = ListRecorder()
    chat = ChatService(
        THREE, engines, policy=policy, predictor=FaqPredictor(), recorder=recorder or listed
    )
    return http_client(chat, tiers=engines), listed


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_a_stored_hash_matches_its_key_only() -> None:
    stored = hash_key("sk-ts-secret")
    assert key_matches("sk-ts-secret", stored)
    assert not key_matches("sk-ts-secreT", stored) and not key_matches("", stored)
    assert hash_key("sk-ts-secret") != stored  # salted: the same key, another hash
    assert "sk-ts-secret" not in stored
    assert key_owner(keyed(), HASHED_KEY).id == "internal"  # type: ignore[union-attr]
    assert key_owner(keyed(), "sk-ts-guess") is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "auth=missing_key"), (bearer("sk-stolen-0123456789"), "auth=unknown_key")],
    ids=["no key", "unknown key"],
)
def test_a_keyed_policy_answers_401_and_logs_the_refusal_without_the_key(
    tmp_path: Path, headers: dict[str, str], reason: str
) -> None:
    database = tmp_path / "decisions.sqlite"
    log = DecisionLog(open_engine(database))
    http, _ = client(keyed(), DurableRecorder(log, TierserveMetrics(CollectorRegistry())))
    refused = http.post("/v1/chat/completions", json=BODY, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    error = refused.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert "tierserve keys create" in error["message"] or "check the key" in error["message"]
    (record,) = log.query()  # read back from the decision log's database
    assert record.outcome is Outcome.DENIED and record.plan == [reason]
    assert record.tenant == "-" and record.steps == []
    assert record.end_user_sha256 is not None
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("decisions.sqlite*"))
    assert b"sk-stolen" not in stored and b"u-42" not in stored
    assert "sk-stolen" not in refused.text


def test_a_hashed_key_and_a_plain_key_are_served_as_their_tenants() -> None:
    http, recorder = client(keyed())
    for key, tenant in ((HASHED_KEY, "internal"), ("sk-northbank-demo", "northbank")):
        answered = http.post("/v1/chat/completions", json=BODY, headers=bearer(key))
        assert answered.status_code == 200, answered.text
        assert answered.json()["tierserve"]["tenant"] == tenant
    assert [r.outcome for r in recorder.records] == [Outcome.ACCEPT, Outcome.ACCEPT]
    assert HASHED_KEY not in "".join(r.model_dump_json() for r in recorder.records)


def test_metrics_explain_and_models_can_be_put_behind_the_keys() -> None:
    http, _ = client(keyed(protect_metrics=True, protect_explain=True))
    for method, path in (("get", "/metrics"), ("post", "/v1/route/explain"), ("get", "/v1/models")):
        refused = http.request(method, path, json=BODY if method == "post" else None)
        assert refused.status_code == 401, path
        allowed = http.request(
            method, path, json=BODY if method == "post" else None, headers=bearer(HASHED_KEY)
        )
        assert allowed.status_code == 200, (path, allowed.text)
    open_http, _ = client(keyed())  # keys required for chat, metrics left open
    assert open_http.get("/metrics").status_code == 200


def test_an_open_gateway_says_so_in_its_model_list() -> None:
    http, recorder = client(SUPPORT)
    models = http.get("/v1/models").json()
    assert models["tierserve"] == {
        "auth": "open",
        "open_tenant": "public",
        "policy_version": SUPPORT.version,
    }
    assert http.post("/v1/chat/completions", json=BODY).status_code == 200
    assert recorder.records[0].tenant == "public"
    keyed_models = client(keyed())[0].get("/v1/models", headers=bearer(HASHED_KEY)).json()
    assert keyed_models["tierserve"] == {
        "auth": "api_key_required",
        "policy_version": SUPPORT.version,
    }


def test_the_cli_creates_a_key_whose_hash_the_policy_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keys", "create"]) == 0
    out = capsys.readouterr().out
    key = out.split("stored anywhere): ")[1].split()[0]
    stored = out.split("api_key_hashes: ['")[1].split("'")[0]
    tenants = [t.model_copy(update={"api_key_hashes": [stored]}) for t in SUPPORT.tenants[:1]]
    policy = Policy.model_validate(
        {
            **SUPPORT.model_dump(),
            "tenants": [t.model_dump() for t in tenants],
            "default_tenant": tenants[0].id,
        }
    )
    assert key_owner(policy, key) is not None and key.startswith("sk-ts-")
