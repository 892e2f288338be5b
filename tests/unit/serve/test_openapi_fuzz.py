"""Schemathesis against the gateway's /openapi.json on scripted tiers: no 5xx and no status
the schema does not list, whatever is generated."""

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from prometheus_client import CollectorRegistry

from tests.fakes import THREE, support_service
from tests.openapi_fuzz import OPERATIONS, fuzz
from tierserve.observe.metrics import TierserveMetrics
from tierserve.serve.http import build_http_app


def gateway_app(tmp_path: Path) -> Any:
    chat, engines, _ = support_service(tmp_path, config=THREE)

    async def statuses() -> dict[str, dict[str, Any] | str]:
        return {t: {"name": t} for t in engines}

    return build_http_app(chat, statuses=statuses, metrics=TierserveMetrics(CollectorRegistry()))


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_generated_request_gets_a_5xx_or_an_undocumented_status(
    tmp_path: Path, method: str, path: str
) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", gateway_app(tmp_path))
    statuses = fuzz(api, method, path, examples=60)
    assert sum(statuses.values()) >= 1 and max(statuses) < 500
    if method == "POST":  # the bodies reached the ladder, not only the validator
        assert statuses[200] > 0 and statuses[400] > 0, statuses
