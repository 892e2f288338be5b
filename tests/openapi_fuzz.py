"""Schemathesis over the gateway's own /openapi.json: for each operation, generated requests
(valid and invalid bodies alike) must get no 5xx and no status the schema does not list.
Used on scripted tiers (tests/unit/serve/test_openapi_fuzz.py) and on the real stack
(tests/reliability/test_3_openapi_fuzz.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

OPERATIONS = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/route/explain"),
    ("GET", "/v1/models"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]


def fuzz(api: Any, method: str, path: str, examples: int, **call: Any) -> Counter[int]:
    """Runs ``examples`` generated requests against one operation; returns the statuses seen.
    Raises on the first 5xx or undocumented status (schemathesis's checks)."""
    operation = api[path][method]
    checks = schemathesis.checks
    statuses: Counter[int] = Counter()

    # Driven by hypothesis directly: schemathesis's pytest plugin does not run on pytest 9.
    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def one(case: Any) -> None:
        if isinstance(case.body, dict) and "model" in case.body:
            # A random model name is refused at once; a served one takes the body deeper.
            case.body["model"] = "tierserve"
        response = case.call(**call)
        statuses[response.status_code] += 1
        case.validate_response(
            response, checks=[checks.not_a_server_error, checks.status_code_conformance]
        )

    one()
    return statuses
