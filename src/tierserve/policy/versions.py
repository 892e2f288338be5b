"""New versions of a policy file, written through the policy model.

The offline tools (``tierserve eval calibrate``, ``fields``, ``replay``) change a loaded
:class:`~tierserve.policy.spec.Policy` with typed edits and write the result here. The file
names its schema and prompt-model files again instead of their inlined contents, leaves the
API keys read from the environment out, and is validated (as a policy file in its folder)
before it is written.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from tierserve.config import validate_model
from tierserve.errors import ConfigError
from tierserve.policy.file_form import POLICY_FILE
from tierserve.policy.spec import LadderStepSpec, Policy, RouteSpec

__all__ = [
    "WrittenVersion",
    "file_data",
    "route_named",
    "with_route",
    "with_steps",
    "write_version",
]


class WrittenVersion(BaseModel):
    """A policy version written, as the reports of the commands that write one name it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    version: str


def route_named(policy: Policy, name: str) -> RouteSpec:
    route = next((r for r in policy.routes if r.name == name), None)
    if route is None:
        raise ConfigError(
            f"policy {policy.version!r} has no route {name!r}",
            hint=f"use one of {[r.name for r in policy.routes]}",
        )
    return route


def with_route(policy: Policy, route: RouteSpec) -> Policy:
    """``policy`` with its route of ``route``'s name replaced by ``route``."""
    route_named(policy, route.name)
    routes = [route if r.name == route.name else r for r in policy.routes]
    return policy.model_copy(update={"routes": routes})


def with_steps(
    policy: Policy, name: str, change: Callable[[LadderStepSpec], LadderStepSpec | None]
) -> Policy:
    """``policy`` with each generating step of route ``name`` changed by ``change`` (None:
    the step is dropped); terminal actions are kept as they are."""
    route = route_named(policy, name)
    steps = [change(step) if step.action == "generate" else step for step in route.ladder]
    kept = [step for step in steps if step is not None]
    return with_route(policy, route.model_copy(update={"ladder": kept}))


def file_data(policy: Policy) -> dict[str, Any]:
    """What the policy file of ``policy`` holds: its fields that differ from their defaults,
    files named rather than inlined, no tiers (the stack's) and no keys from the environment."""
    data: dict[str, Any] = policy.model_dump(
        mode="json", exclude_defaults=True, context=POLICY_FILE
    )
    return data


def write_version(
    policy: Policy, *, source: Path, out: Path, provenance: str, suffix: str
) -> WrittenVersion:
    """Writes ``policy`` to ``out`` as a new version of the policy file ``source`` (its
    version gets ``+<suffix>.<UTC time>``), with ``provenance`` as a comment header. ``out``
    must be beside ``source``: the files the policy names are relative to its folder."""
    if out.resolve().parent != source.resolve().parent:
        raise ConfigError(
            f"{out} is not beside {source}, whose folder the files the policy names (schemas, "
            "prompt models) are relative to",
            hint=f"write the new version into {source.parent}",
        )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    versioned = policy.model_copy(update={"version": f"{policy.version}+{suffix}.{stamp}"})
    data = file_data(versioned)
    # Validated as load_policy would read the file (its files relative to its folder), so a
    # version that would not load is never written.
    written = validate_model(
        Policy,
        {**data, "tiers": policy.tiers},
        source=f"the new version of policy {source}",
        docs="tierserve/policy/spec.py",
        context={"base_dir": out.parent},
    )
    header = "".join(f"# {line}\n" for line in provenance.splitlines())
    out.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return WrittenVersion(path=str(out), version=written.version)
