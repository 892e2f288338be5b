"""The policy version a gateway replica decides by, swapped whole when a new one rolls out
(``tierserve policy apply`` sets the gateway's ``user_config``; Serve calls ``reconfigure``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tierserve.api.service import ChatService
from tierserve.config import StackConfig
from tierserve.observe.metrics import TierserveMetrics
from tierserve.policy.spec import Policy
from tierserve.serve.rollout import GatewayOptions

__all__ = ["PolicySwitch"]

_log = logging.getLogger("ray.serve")


class PolicySwitch:
    """The :class:`ChatService` deciding now. A request takes it once, when it begins, and
    keeps it to its end: a request is decided by exactly one policy version, and a new version
    decides every request that begins after the swap. Services that still finish work of
    theirs (a record written after the caller left) are kept until they are done."""

    def __init__(
        self,
        build: Callable[[Policy], ChatService],
        policy: Policy,
        metrics: TierserveMetrics,
        stack: StackConfig,
    ) -> None:
        """``build``: a service over the replica's tiers, log and queue, deciding by a policy;
        ``policy``: the version the app was built with, for ``stack``."""
        self._build, self._metrics, self._stack = build, metrics, stack
        self._current = build(policy)
        self._retired: list[ChatService] = []
        self._applied = False
        metrics.observe_policy(policy.version)

    def current(self) -> ChatService:
        return self._current

    async def apply(self, user_config: Mapping[str, Any]) -> None:
        """Decide by the policy in ``user_config`` from now on (none, or the same: nothing
        changes). A new replica that cannot load it fails to start, as Serve expects; a running
        one keeps its last good version, logs why and counts it
        (``tierserve_policy_apply_failures_total``): a version that failed to load must not take
        down replicas that serve. ``tierserve policy apply`` checks a version before it sends
        it, so this is for versions deployed another way (``serve deploy``, KubeRay)."""
        first, self._applied = not self._applied, True
        try:
            options = GatewayOptions.model_validate(user_config)
            policy = await asyncio.to_thread(options.chosen, self._stack)
            if policy is None or policy == self._current.policy:
                return
            fresh = await asyncio.to_thread(self._build, policy)
        except Exception:
            if first:
                raise
            self._metrics.count_policy_failure(_version_given(user_config))
            _log.exception("policy not applied; still deciding by %s", self._current.policy.version)
            return
        old = self._current
        self._retired = [s for s in (*self._retired, old) if s.busy]
        self._current = fresh
        self._metrics.observe_policy(policy.version, previous=old.policy.version)
        _log.info("now deciding by policy %s (was %s)", policy.version, old.policy.version)


def _version_given(user_config: Mapping[str, Any]) -> str:
    """The version a user_config that failed to load names, as far as it can be read."""
    policy = user_config.get("policy") if isinstance(user_config, Mapping) else None
    version = policy.get("version") if isinstance(policy, Mapping) else None
    return str(version) if version else "unreadable"
