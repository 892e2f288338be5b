"""Issue 19, test 6: schemathesis against the running stack's /openapi.json: no 5xx and no
undocumented status for any operation."""

from __future__ import annotations

from pathlib import Path

import schemathesis

from tests.openapi_fuzz import OPERATIONS, fuzz
from tests.reliability.conftest import Scale, write_figures


def test_generated_requests_get_no_5xx_and_no_undocumented_status(
    base_url: str, scale: Scale, results: Path
) -> None:
    api = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    seen = {}
    for method, path in OPERATIONS:
        examples = scale.fuzz_examples if method == "POST" else 5
        statuses = fuzz(api, method, path, examples, base_url=base_url, timeout=300)
        seen[f"{method} {path}"] = {str(k): v for k, v in sorted(statuses.items())}
    write_figures(results, "openapi_fuzz", {"statuses": seen})
    assert all(int(status) < 500 for counts in seen.values() for status in counts), seen
