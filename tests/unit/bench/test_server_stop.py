"""A server the harness started leaves nothing behind: not its own group, and not a process
that a worker moved to a group of its own (as Ray's workers do with the engines and HAProxy)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tests.ports import free_port
from tierserve.bench.processes import running_server

SERVER = """
import http.server, os, subprocess, sys
# A grandchild in a process group of its own, as Ray's workers start theirs.
stray = subprocess.Popen(["sleep", "300"], preexec_fn=os.setpgrp)
open(sys.argv[2], "w").write(str(stray.pid))

class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_stopping_a_server_kills_the_processes_it_moved_out_of_its_group(tmp_path: Path) -> None:
    port, marker = free_port(), tmp_path / "stray.pid"
    command = [sys.executable, "-c", SERVER, str(port), str(marker)]
    with running_server(
        command, ready_url=f"http://127.0.0.1:{port}/", log_path=tmp_path / "log", timeout_s=30
    ):
        stray = int(marker.read_text())
        assert _alive(stray) and os.getpgid(stray) != os.getpgid(os.getpid())
    deadline = time.monotonic() + 5  # SIGKILL is delivered, not awaited
    while _alive(stray) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(stray)
