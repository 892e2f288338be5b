"""Finding a Serve deployment's replica processes on this host."""

from __future__ import annotations

from pathlib import Path


def replica_pids(app: str, deployment: str) -> list[int]:
    """The processes of a deployment's replicas (Ray titles them
    ``ray::ServeReplica:<app>:<deployment>``)."""
    pids = []
    prefix = f"ray::ServeReplica:{app}:{deployment}".encode()
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and title.startswith(prefix):
            pids.append(int(proc.name))
    return pids
