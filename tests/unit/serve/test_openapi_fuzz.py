"""Schemathesis against the gateway's /openapi.json on scripted tiers: no 5xx and no status
the schema does not list, whatever is generated."""

from pathlib import Path
from typing import Any

import pytest
import schemathesis

# Imported here, at collection, rather than lazily by the first from_asgi: pytest rewrites
# schemathesis's modules as it imports them, and CPython 3.11.7's AST constructor failed on
# one of them ("recursion depth mismatch") when that happened mid-session in CI.
import schemathesis.specs.openapi.schemas

from tests.fakes import THREE, http_app, support_service
from tests.openapi_fuzz import OPERATIONS, fuzz


def gateway_app(tmp_path: Path) -> Any:
    chat, engines, _ = support_service(tmp_path, config=THREE)
    return http_app(chat, tiers=engines)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_generated_request_gets_a_5xx_or_an_undocumented_status(
    tmp_path: Path, method: str, path: str
) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", gateway_app(tmp_path))
    statuses = fuzz(api, method, path, examples=60)
    assert sum(statuses.values()) >= 1 and max(statuses) < 500
    if method == "POST":  # the bodies reached the ladder, not only the validator
        assert statuses[200] > 0 and statuses[400] > 0, statuses
