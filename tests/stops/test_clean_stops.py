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

Short mode (CI): one ``make serve`` start (a replica killed, then SIGTERM). Full mode: five
starts, each way at least twice. Figures go to ``TIERSERVE_RELIABILITY_OUT/clean_stops.json``.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
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
    still_running,
    tier_replica,
)
from tierserve.launch import wait_healthy
from tierserve.serve.engine_processes import left_engines

PORT = int(os.environ.get("TIERSERVE_STOPS_PORT", "18771"))


def stream_long_answers(url: str, count: int) -> list[threading.Thread]:
    """Long answers in flight while the stack stops (their outcome is not what is tested)."""

    def one(index: int) -> None:
        body = {
            "model": "tierserve",
            "stream": True,
            "max_tokens": 200,
            "messages": [{"role": "user", "content": f"Tell a long story, number {index}."}],
        }
        try:
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as r:
                for _ in r.iter_lines():
                    pass
        except httpx.HTTPError:
            pass

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    return threads


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


def signal_the_job(signum: signal.Signals) -> Callable[[Job], dict[str, object]]:
    def stop(job: Job) -> dict[str, object]:
        everything = job.everything()
        stream_long_answers(job.url, 4)
        started = time.monotonic()
        job.signal_group(signum)
        code = job.wait_exit()
        runner = "make serve" if job.via_make else "tierserve serve"
        return {
            "way": f"{signum.name} to the {runner} job",
            "processes": len(everything),
            "left": still_running(everything, within_s=10),
            # make dies of the signal itself once its child has ended.
            "exit_code": None if job.via_make else code,
            "stopped_in_order": job.stopped_in_order(),
            "stop_s": round(time.monotonic() - started, 1),
        }

    return stop


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
    "short": [(True, [kill_a_tier_replica, signal_the_job(signal.SIGTERM)])],
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
