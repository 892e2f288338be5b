"""Servers the harness starts, waits for, and stops with everything they spawned."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tierserve.errors import TierUnavailableError

__all__ = ["running_server"]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_server(
    command: Sequence[str], *, ready_url: str, log_path: Path, timeout_s: float
) -> Iterator[float]:
    """Start ``command`` in its own process group; yields the seconds it took to answer
    ``ready_url`` with 200, and on exit stops the whole group (SIGTERM, then SIGKILL)."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(command), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    started = time.monotonic()
    try:
        while not _ready(ready_url):
            if process.poll() is not None:
                raise TierUnavailableError(
                    "bench",
                    f"{command[2] if len(command) > 2 else command[0]} exited with "
                    f"{process.returncode} before it was ready",
                    hint=f"read {log_path}",
                )
            if time.monotonic() - started > timeout_s:
                raise TierUnavailableError(
                    "bench",
                    f"{ready_url} not ready after {timeout_s:.0f} s",
                    hint=f"read {log_path}",
                )
            time.sleep(2)
        yield time.monotonic() - started
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, grace_s in ((signal.SIGTERM, 60.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=grace_s)
            # Ray and vLLM leave workers in the group after the leader exits: stop them too.
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
        break
    _kill_session(process.pid)


def _kill_session(session: int) -> None:
    """SIGKILL what is left of the session the server was started in (only this harness's
    processes are in it). Ray's workers form groups of their own, so an engine core or an
    HAProxy they started can outlive the group's kill, re-parented to init."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if pid != os.getpid() and os.getsid(pid) == session:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
