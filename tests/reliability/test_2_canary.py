"""Issue 19, test 7: a canary string sent in prompts, system messages, a caller's schema,
headers, bad input and a request that goes to human review appears nowhere: not in error
bodies, the decision log's files, the review queue, /metrics or the logs of Ray, Serve and
vLLM (this stack's policy keeps prompts as hashes only)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.bad_inputs import canary_requests
from tests.reliability.conftest import CANARY, ray_logs_dir, write_figures
from tierserve.config import StackConfig


def files_holding(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and needle in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue
    return found


def test_the_canary_appears_nowhere(
    base_url: str, state_dir: Path, stack_config: StackConfig, results: Path
) -> None:
    statuses: dict[str, int] = {}
    echoed: list[str] = []
    with httpx.Client(base_url=base_url, timeout=300) as client:
        for name, body, headers in canary_requests(CANARY):
            route = "/v1/route/explain" if name == "explain" else "/v1/chat/completions"
            response = client.post(route, json=body, headers=headers)
            statuses[name] = response.status_code
            if response.status_code != 200 and CANARY in response.text:
                echoed.append(f"{name}: {response.text[:300]}")
            if any(CANARY in value for value in response.headers.values()):
                echoed.append(f"{name} (headers): {dict(response.headers)}")
        metrics = client.get("/metrics").text
    time.sleep(3)  # log lines flushed, records committed
    logs = ray_logs_dir()
    needle = CANARY.encode()
    found = {
        "error bodies and headers": echoed,
        "metrics": [CANARY] if CANARY in metrics else [],
        "state (decision log, review queue)": files_holding(state_dir, needle),
        "ray, serve and vllm logs": files_holding(logs, needle),
    }
    figures = {
        "requests": statuses,
        "places_checked": {
            "state_files": sum(1 for p in state_dir.rglob("*") if p.is_file()),
            "log_files": sum(1 for p in logs.rglob("*") if p.is_file()),
        },
        "found": found,
    }
    write_figures(results, "canary", figures)
    answered = ("prompt", "system message", "caller schema", "headers", "human review")
    assert all(statuses[n] == 200 for n in answered), statuses
    refused = ("bad pattern", "bad stop", "task header")
    assert all(statuses[n] == 400 for n in refused), statuses
    assert statuses["unknown model"] == 404, statuses
    assert not any(found.values()), found
