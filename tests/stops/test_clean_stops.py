"""Issue 33, item 2: stopping the stack leaves no engine process behind, whatever dies first.

Each start is a ``make serve`` or ``tierserve serve`` job; while long answers stream, it is
stopped one way:

* a tier replica SIGKILLed (Serve restarts it): the dead replica's engine ends, a new one
  answers;
* SIGTERM to the job's process group (make passes it on to its child, which got it already),
  or Ctrl-C's SIGINT to it: the job exits, the stack stopped in order, and nothing it
  started is left;
* ``serve.shutdown()`` from a second driver: every replica and engine ends, then the job
  stops on Ctrl-C.

Five starts, each way at least twice (``make reliability``). CI's short version is in the
reliability suite, on its own stack: test 6 kills a tier replica and checks its engines end,
test 9 stops the ``make serve`` job with SIGTERM. Figures go to
``TIERSERVE_RELIABILITY_OUT/clean_stops.json``.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.stops.conftest import MODE
from tests.stops.job import (
    Job,
    engines_of,
    serve_config,
    shut_serve_down,
    signal_the_job,
    still_running,
    stream_long_answers,
    tier_replica,
)
from tierserve.launch import wait_healthy
from tierserve.serve.engine_processes import left_engines

PORT = int(os.environ.get("TIERSERVE_STOPS_PORT", "18771"))


def kill_a_tier_replica(job: Job) -> dict[str, object]:
    replica = tier_replica("small")
    engines = engines_of(replica)
    assert engines, "the small tier's replica runs its engine in child processes"
    os.kill(replica, signal.SIGKILL)
    left = still_running(engines)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if tier_replica("small") != replica:
                break
        except ValueError:
            pass
        time.sleep(5)
    wait_healthy(job.url, timeout_s=600)
    body = {
        "model": "tierserve/small",
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    answered = httpx.post(f"{job.url}/v1/chat/completions", json=body, timeout=120).status_code
    return {
        "way": "tier replica SIGKILL",
        "engines": len(engines),
        "left": left,
        "restarted_answered": answered,
    }


def serve_shutdown(job: Job) -> dict[str, object]:
    engines = [e for tier in ("small", "medium", "large") for e in engines_of(tier_replica(tier))]
    stream_long_answers(job.url, 4)
    shut_serve_down()
    return {
        "way": "serve.shutdown() from a second driver",
        "engines": len(engines),
        "left": still_running(engines),
    }


Way = Callable[[Job], dict[str, object]]
ROUNDS: dict[str, list[tuple[bool, list[Way]]]] = {
    # (started by make, the ways it is stopped in turn)
    "full": [
        (True, [kill_a_tier_replica, signal_the_job(signal.SIGTERM)]),
        (False, [serve_shutdown, signal_the_job(signal.SIGINT)]),
        (True, [kill_a_tier_replica, signal_the_job(signal.SIGINT)]),
        (False, [kill_a_tier_replica, signal_the_job(signal.SIGTERM)]),
        (False, [serve_shutdown, signal_the_job(signal.SIGINT)]),
    ],
}


def test_no_way_of_stopping_the_stack_leaves_an_engine_behind() -> None:
    assert not left_engines(), "engines of an earlier run are left; this test would blame them"
    directory = Path(tempfile.mkdtemp(prefix="tierserve-stops-"))
    config = serve_config(directory, PORT)
    outcomes = []
    for number, (via_make, ways) in enumerate(ROUNDS[MODE]):
        job = Job(config, PORT, directory / f"job-{number}.log", via_make=via_make)
        try:
            job.wait_ready()
            for way in ways:
                outcomes.append(way(job))
                print(f"\n[stops] {json.dumps(outcomes[-1])}")
        finally:
            if job.process.poll() is None:
                job.signal_group(signal.SIGKILL)
                job.process.wait()
        outcomes.append(
            {"way": "after the job", "orphaned_engines": [p.describe() for p in left_engines()]}
        )
    out = Path(os.environ.get("TIERSERVE_RELIABILITY_OUT") or directory)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"mode": MODE, "starts": len(ROUNDS[MODE]), "stops": outcomes}
    (out / "clean_stops.json").write_text(json.dumps(figures, indent=2) + "\n")
    for outcome in outcomes:
        assert not outcome.get("left") and not outcome.get("orphaned_engines"), outcome
        assert outcome.get("exit_code") in (0, None), outcome
        assert outcome.get("stopped_in_order", True), outcome
        assert outcome.get("restarted_answered", 200) == 200, outcome


pytestmark = pytest.mark.integration
