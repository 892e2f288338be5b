"""Engine processes end with the replica that started them, however it ends, and a start
refuses while engines of an earlier run are left (real processes, no Ray)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from tierserve.errors import LeftEnginesError
from tierserve.launch import refuse_left_engines
from tierserve.serve import engine_processes
from tierserve.serve.engine_processes import OWNER_VARIABLE, end_processes, left_engines

# Stands in for vLLM's EngineCore: a process that ignores SIGTERM, as an orphaned one did.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"

# Stands in for a tier replica: marks itself, starts its guard, then an engine (which inherits
# the mark) and an unrelated process started without it.
REPLICA = f"""
import os, subprocess, sys, time
from tierserve.serve.engine_processes import OWNER_VARIABLE, mark_engine_owner, start_guard
start_guard(mark_engine_owner())
engine = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}])
unmarked = {{k: v for k, v in os.environ.items() if k != OWNER_VARIABLE}}
bystander = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}], env=unmarked)
print(engine.pid, bystander.pid, flush=True)
time.sleep(600)
"""


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def stubborn_orphan() -> Iterator[subprocess.Popen[bytes]]:
    """A process marked by an owner that no longer runs (PID 2**22 + 1 is above Linux's limit)."""
    environment = {**os.environ, OWNER_VARIABLE: f"{2**22 + 1}:12.000"}
    process = subprocess.Popen([sys.executable, "-c", STUBBORN], env=environment)
    yield process
    process.kill()
    process.wait()


def test_a_killed_replica_takes_its_engine_but_not_other_processes() -> None:
    replica = subprocess.Popen([sys.executable, "-c", REPLICA], stdout=subprocess.PIPE, text=True)
    assert replica.stdout is not None
    engine, bystander = (int(pid) for pid in replica.stdout.readline().split())
    try:
        time.sleep(1)
        assert psutil.pid_exists(engine), "the engine must run while its replica does"
        replica.kill()  # SIGKILL: the replica runs no shutdown of its own
        replica.wait()
        # One guard poll, then SIGTERM (ignored) and SIGKILL after the grace period.
        assert _gone_within(engine, engine_processes.STOP_GRACE_S + 5)
        assert psutil.Process(bystander).is_running()
    finally:
        for pid in (engine, bystander):
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()


def test_engines_whose_replica_is_gone_are_listed_with_their_memory(
    stubborn_orphan: subprocess.Popen[bytes],
) -> None:
    left = {process.pid: process for process in left_engines()}
    assert stubborn_orphan.pid in left
    assert left[stubborn_orphan.pid].resident_bytes > 0
    assert str(stubborn_orphan.pid) in left[stubborn_orphan.pid].describe()
    assert os.getpid() not in left


def test_a_start_refuses_naming_the_left_engines_and_how_to_end_them(
    stubborn_orphan: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_processes, "STOP_GRACE_S", 0.5)
    with pytest.raises(LeftEnginesError) as refused:
        refuse_left_engines()
    assert str(stubborn_orphan.pid) in refused.value.message
    assert f"kill -9 {stubborn_orphan.pid}" in refused.value.hint


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(
    stubborn_orphan: subprocess.Popen[bytes],
) -> None:
    time.sleep(0.5)  # let it install its SIGTERM handler
    started = time.monotonic()
    assert end_processes([psutil.Process(stubborn_orphan.pid)], grace_s=1.0) == [
        stubborn_orphan.pid
    ]
    assert stubborn_orphan.wait(timeout=5) == -9
    assert time.monotonic() - started >= 1.0
