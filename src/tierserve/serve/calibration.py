"""Which version of a policy serves: the one calibrated on the model versions the tiers serve.

A policy's thresholds hold for the models they were measured on (its ``calibrated_on``); the
same tier served in another format (GPTQ 4-bit where the thresholds came from int8 W8A8) is
another model to them. The stack may name several versions of its policy, one per served
format; the first that matches is used, and a mismatch is never silent: a warning at start, or
a refusal where the policy requires calibrated models.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from tierserve.config import StackConfig
from tierserve.engine.resolve import expected_model_versions
from tierserve.errors import ConfigError
from tierserve.hardware import HostCapability, detect_host
from tierserve.policy.spec import Policy, load_policy
from tierserve.structured.registry import check_schemas

__all__ = ["calibrated_for", "calibration_note", "policy_for_host", "servable_policy"]

_log = logging.getLogger("tierserve.calibration")


def calibration_note(policy: Policy, served: Mapping[str, str]) -> str | None:
    """What differs between the models ``policy`` was calibrated on and those ``served``, in
    words; None when nothing does (or the policy records no calibration)."""
    gaps = policy.uncalibrated(served)
    if not gaps:
        return None
    shown = "; ".join(
        f"{tier}: calibrated on {was}, served {now}" for tier, (was, now) in gaps.items()
    )
    return f"policy {policy.version!r} was not calibrated on the served models ({shown})"


def calibrated_for(candidates: Sequence[Policy], served: Mapping[str, str]) -> Policy:
    """The first of ``candidates`` calibrated on the ``served`` model versions (tier ->
    version); else the first, with a warning (or a refusal, where it requires calibrated
    models)."""
    for policy in candidates:
        if policy.calibrated_on and not policy.uncalibrated(served):
            _log.info("policy %s: calibrated on the served models %s", policy.version, dict(served))
            return policy
    policy = candidates[0]
    note = calibration_note(policy, served)
    if note is not None:
        if policy.require_calibrated_models:
            raise ConfigError(
                note,
                hint="serve the models it was calibrated on, add a version calibrated on these "
                "to policy_calibrations, or recalibrate (tierserve eval calibrate)",
            )
        _log.warning("%s: its thresholds may not hold", note)
    return policy


def policy_for_host(config: StackConfig, host: HostCapability) -> Policy:
    """The policy ``config`` serves on ``host``: of its ``policy`` and ``policy_calibrations``,
    read for its tiers, the one calibrated on the model versions ``host`` serves
    (:func:`calibrated_for`)."""
    paths = (config.policy, *config.policy_calibrations)
    candidates = [load_policy(path, config.tier_names) for path in paths]
    return calibrated_for(candidates, expected_model_versions(config, host))


def servable_policy(config: StackConfig) -> Policy:
    """The policy ``config`` serves on this host (:func:`policy_for_host`), its schemas checked
    as Outlines will compile them: what a start, a rollout (``tierserve policy apply``) and a
    gateway replica loading policy files all serve, checked the same way."""
    policy = policy_for_host(config, detect_host())
    check_schemas(policy.schemas)
    return policy
