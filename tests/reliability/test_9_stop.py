"""Issue 33, item 2, after all the rest: SIGTERM to the ``make serve`` job's process group, as
a terminal's Ctrl-C reaches its foreground job, with long answers streaming. The stack stops
in order and nothing it started is left: no engine, no Ray process, no HAProxy."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.reliability.conftest import write_figures
from tests.stops.job import Job, signal_the_job
from tierserve.serve.engine_processes import left_engines


def test_sigterm_to_the_make_serve_job_stops_the_stack_and_leaves_nothing(
    stack_job: Job, results: Path
) -> None:
    import ray

    # This process joined the cluster to read it (canary, rollout); a driver left connected
    # would outlive the cluster it watches.
    ray.shutdown()
    stop = signal_the_job(signal.SIGTERM)(stack_job)
    figures = {**stop, "orphaned_engines": [p.describe() for p in left_engines()]}
    write_figures(results, "clean_stop", figures)
    assert not figures["left"] and not figures["orphaned_engines"], figures
    assert figures["stopped_in_order"], figures
