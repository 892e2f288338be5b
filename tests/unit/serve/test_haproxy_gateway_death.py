"""A gateway replica dies with requests in flight: behind the HAProxy that Ray Serve configures
with the stack's settings, each is sent again to the backup and answered; none gets HAProxy's
502 (Ray's 500) or a closed connection.

Real parts: Ray's own HAProxy template and settings, rendered in a fresh interpreter with the
environment ``apply_ingress`` sets, and the HAProxy binary the stack runs; the gateway and
Serve's proxy (HAProxy's backup server) are stand-ins that answer or die on cue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port
from tierserve.serve.ingress import HAPROXY_RETRIES

IN_FLIGHT = 8

RENDER = """
import sys
from pathlib import Path
from ray.serve._private.haproxy import BackendConfig, HAProxyApi, HAProxyConfig, ServerConfig
from ray.serve.config import HTTPOptions

directory = Path(sys.argv[1])
port, gateway, backup = (int(value) for value in sys.argv[2:5])
config = HAProxyConfig(
    http_options=HTTPOptions(host="127.0.0.1", port=port),
    socket_path=str(directory / "admin.sock"),
    enable_hap_optimization=False,
    metrics_enabled=False,
    has_received_routes=True,
    has_received_servers=True,
    log_target="127.0.0.1:9",
)
backend = BackendConfig(
    name="http-app",
    path_prefix="/",
    app_name="app",
    servers=[ServerConfig(name="gateway", host="127.0.0.1", port=gateway)],
    fallback_server=ServerConfig(name="serve-proxy", host="127.0.0.1", port=backup),
)
api = HAProxyApi(config, {"app": backend}, str(directory / "haproxy.cfg"))
api._generate_config_file_internal()
"""


class StandIn:
    """An HTTP/1.1 server on a thread of its own: answers health checks; answers a POST, or,
    as a gateway replica SIGKILLed, resets every connection once ``IN_FLIGHT`` POSTs wait and
    stops listening."""

    def __init__(self, *, dies: bool) -> None:
        self.dies = dies
        self.port = free_port()
        self.answered = 0
        self._waiting = 0
        self._all_in_flight = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                if head.startswith(b"POST") and self.dies:
                    await self._die_with_all_in_flight()
                    return
                body = b'{"answered_by":"backup"}' if head.startswith(b"POST") else b"ok"
                self.answered += head.startswith(b"POST")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _die_with_all_in_flight(self) -> None:
        self._waiting += 1
        if self._waiting == IN_FLIGHT:
            self._all_in_flight.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_in_flight.wait(), timeout=5)
        if self._server.is_serving():
            self._server.close()
            for writer in list(self._writers):
                # SO_LINGER 0: the kernel resets the connection, as it does for a killed process.
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                writer.transport.abort()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        # Closed here, not by the garbage collector: a finalizer's warning that fires while a
        # later test parses Python (assertion rewriting, ast.parse) breaks CPython 3.11.7's
        # AST constructor ("recursion depth mismatch").
        self._loop.close()

    async def _close(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self._server.wait_closed()
        await asyncio.sleep(0.1)  # the closed connections' sockets are released by callbacks


@pytest.fixture
def stand_ins() -> Iterator[tuple[StandIn, StandIn]]:
    gateway, backup = StandIn(dies=True), StandIn(dies=False)
    yield gateway, backup
    gateway.stop()
    backup.stop()


def start_haproxy(
    directory: Path, settings: Mapping[str, str], gateway: StandIn, backup: StandIn
) -> tuple[subprocess.Popen[bytes], int]:
    from ray.serve._private.haproxy import get_haproxy_binary

    port = free_port()
    # Only these settings: a stack started earlier in this process (the integration suite's)
    # left its own in the environment, its HAProxy's stats and metrics ports among them.
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_HAPROXY_")},
        **settings,
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
    }
    arguments = [str(directory), str(port), str(gateway.port), str(backup.port)]
    subprocess.run([sys.executable, "-c", RENDER, *arguments], env=environment, check=True)
    said = directory / "haproxy.log"
    with said.open("wb") as output:
        haproxy = subprocess.Popen(
            [get_haproxy_binary(), "-db", "-f", str(directory / "haproxy.cfg")],
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/healthz", timeout=1).status_code == 200:
                return haproxy, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    haproxy.kill()
    raise AssertionError(f"HAProxy did not answer its health check within 10 s: {said.read_text()}")


async def chat_requests_in_flight(port: int) -> list[str]:
    """``IN_FLIGHT`` chat requests at once, as a client with pooled connections sends them
    (httpx writes the headers and the body apart)."""

    async def one(client: httpx.AsyncClient, index: int) -> str:
        body = {"model": "tierserve", "messages": [{"role": "user", "content": f"Hi {index}"}]}
        try:
            return str((await client.post("/v1/chat/completions", json=body)).status_code)
        except httpx.HTTPError as error:
            return type(error).__name__

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        return await asyncio.gather(*(one(client, index) for index in range(IN_FLIGHT)))


def outcomes_when_the_gateway_dies(
    tmp_path: Path, settings: Mapping[str, str], stand_ins: tuple[StandIn, StandIn]
) -> list[str]:
    haproxy, port = start_haproxy(tmp_path, settings, *stand_ins)
    try:
        return asyncio.run(chat_requests_in_flight(port))
    finally:
        haproxy.kill()
        haproxy.wait()


def test_requests_in_flight_in_a_dying_gateway_are_answered_by_the_backup(
    tmp_path: Path, stand_ins: tuple[StandIn, StandIn]
) -> None:
    outcomes = outcomes_when_the_gateway_dies(tmp_path, HAPROXY_RETRIES, stand_ins)
    assert outcomes == ["200"] * IN_FLIGHT
    assert stand_ins[1].answered == IN_FLIGHT


def test_without_buffering_the_request_the_retry_rule_alone_leaves_them_failing(
    tmp_path: Path, stand_ins: tuple[StandIn, StandIn]
) -> None:
    """Why the settings carry ``option http-buffer-request``: HAProxy retries only a request
    it holds whole, and it connects to the server as soon as the headers arrive."""
    unbuffered = {**HAPROXY_RETRIES, "RAY_SERVE_HAPROXY_RETRY_ON": "conn-failure empty-response"}
    outcomes = outcomes_when_the_gateway_dies(tmp_path, unbuffered, stand_ins)
    assert set(outcomes) - {"200"}, outcomes
