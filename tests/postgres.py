"""A real PostgreSQL server for tests: the system's binaries, run as the `postgres` user when
the tests run as root (PostgreSQL refuses root), on a Unix socket in a fresh folder."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.ports import free_port

__all__ = ["fresh_database", "postgres_server"]


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed; run `make system-deps` (apt-get install "
            "postgresql), which .ci/run does"
        )
    return found


@contextmanager
def postgres_server() -> Iterator[tuple[str, int]]:
    """Starts a server; yields (socket folder, port); stops it and removes its files."""
    folder = tempfile.mkdtemp(prefix="tierserve-pg-")
    as_owner: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(folder, "data"), free_port()
    run = {"check": True, "capture_output": True, "text": True}
    subprocess.run([*as_owner, _binary("initdb"), "-D", data, "-A", "trust", "-U", "app"], **run)  # type: ignore[call-overload]
    pg_ctl = [*as_owner, _binary("pg_ctl"), "-D", data]
    options = f"-p {port} -k {folder} -c listen_addresses='' -c fsync=on"
    log = os.path.join(folder, "log")
    subprocess.run([*pg_ctl, "-o", options, "-l", log, "-w", "start"], **run)  # type: ignore[call-overload]
    try:
        yield folder, port
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server: tuple[str, int]) -> str:
    """A new, empty database on ``server``, as a SQLAlchemy URL."""
    folder, port = server
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        host=folder, port=port, user="app", dbname="postgres", autocommit=True
    ) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://app@/{name}?host={folder}&port={port}"
