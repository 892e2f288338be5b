"""Engine processes that never outlive the replica that started them.

vLLM runs a tier's engine in child processes of the tier's replica (``VLLM::EngineCore`` and
its workers). A replica that dies without running its shutdown (SIGKILLed, or killed with its
raylet when Ray's GCS went first) leaves them re-parented to init, holding their memory (a
GPU's KV cache on a GPU host) until SIGKILL. So:

* a replica marks itself before it builds its engine (:func:`mark_engine_owner`): every
  process it starts inherits the mark, which names the replica;
* a guard started beside the replica (:func:`start_guard`), outside its session so no signal
  meant for the stack reaches it, waits for the replica to end and then ends every process
  that carries its mark;
* a start refuses while marked processes whose owner is gone are left (:func:`left_engines`).

This file also runs as the guard (``python -I engine_processes.py <owner>``), so it imports
only the standard library and psutil.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

__all__ = [
    "OWNER_VARIABLE",
    "LeftProcess",
    "end_processes",
    "engines_under",
    "left_engines",
    "mark_engine_owner",
    "start_guard",
]

OWNER_VARIABLE = "TIERSERVE_ENGINE_OWNER"
"""Set in a replica's environment as ``<pid>:<start time>``; its engine processes inherit it.
The start time tells the owner from a later process that reuses its PID."""

STOP_GRACE_S = 5.0
"""How long a process gets to end after SIGTERM before SIGKILL (an orphaned EngineCore may
ignore SIGTERM while it waits for a client that is gone)."""

GUARD_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class LeftProcess:
    pid: int
    title: str
    resident_bytes: int

    def describe(self) -> str:
        return f"{self.pid} ({self.title}, {self.resident_bytes / 2**30:.1f} GiB)"


def _identity(process: psutil.Process) -> str:
    return f"{process.pid}:{process.create_time():.3f}"


def mark_engine_owner() -> str:
    """Marks this process as the owner of the processes it starts from now on."""
    mark = _identity(psutil.Process())
    os.environ[OWNER_VARIABLE] = mark
    return mark


def start_guard(mark: str) -> subprocess.Popen[bytes]:
    """Starts the guard of the processes marked ``mark`` (its owner is this process)."""
    environment = {name: value for name, value in os.environ.items() if name != OWNER_VARIABLE}
    return subprocess.Popen(
        [sys.executable, "-I", __file__, mark],
        env=environment,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def _owner_mark(process: psutil.Process) -> str | None:
    try:
        return process.environ().get(OWNER_VARIABLE)
    except (psutil.Error, OSError):
        return None


def _marked(mark: str) -> list[psutil.Process]:
    return [
        process
        for process in psutil.process_iter()
        if process.pid != os.getpid() and _owner_mark(process) == mark
    ]


def _owner_alive(mark: str) -> bool:
    """The process ``mark`` names still runs: same PID and start time, and not a zombie (a
    killed replica stays a zombie until its parent reaps it)."""
    pid, _, _ = mark.partition(":")
    try:
        owner = psutil.Process(int(pid))
        return _identity(owner) == mark and owner.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError):
        return False


def end_processes(processes: Iterable[psutil.Process], grace_s: float = STOP_GRACE_S) -> list[int]:
    """SIGTERM, then SIGKILL whatever is still running after ``grace_s``; returns the PIDs."""
    ending = []
    for process in processes:
        try:
            process.terminate()
            ending.append(process)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(ending, timeout=grace_s)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    return [process.pid for process in ending]


def engines_under(ancestor: psutil.Process) -> list[psutil.Process]:
    """Marked processes whose owning replica descends from ``ancestor`` (a driver that started
    its own Ray cluster): that stack's engines, and no other stack's."""
    owners = set()
    for process in ancestor.children(recursive=True):
        try:
            owners.add(_identity(process))
        except psutil.Error:
            continue
    return [process for process in psutil.process_iter() if _owner_mark(process) in owners]


def left_engines() -> list[LeftProcess]:
    """Marked processes whose owning replica is gone: engines of an earlier run."""
    left = []
    for process in psutil.process_iter():
        mark = _owner_mark(process)
        if mark is None or _owner_alive(mark):
            continue
        try:
            title = " ".join(process.cmdline())[:60] or process.name()
            left.append(LeftProcess(process.pid, title, process.memory_info().rss))
        except psutil.Error:
            continue
    return left


def _guard(mark: str) -> None:
    while _owner_alive(mark):
        time.sleep(GUARD_POLL_S)
    ended = end_processes(_marked(mark))
    if ended:
        owner, _, _ = mark.partition(":")
        print(f"tierserve engine guard: replica {owner} ended; ended {ended}", file=sys.stderr)


if __name__ == "__main__":
    _guard(sys.argv[1])
