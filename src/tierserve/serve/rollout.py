"""Changing a running stack in place: a new policy version, a deployment's replica count, a
deployment restarted, each without restarting anything else.

Ray Serve restarts every replica of an app whose ``args`` change (they are part of its code
version). What it changes in place are a deployment's options in the app's deployed config:
``user_config`` (the replicas' ``reconfigure``, no restart), ``num_replicas``, and
``ray_actor_options`` (that deployment's replicas restart, the others do not). So the stack is
deployed from its serve config declaratively (:func:`deploy_config`), and each change here
rewrites one deployment's options in the app's deployed config and deploys it again, the same
way ``serve deploy`` and KubeRay's in-place update do.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierserve.config import ServeApp, StackConfig
from tierserve.errors import ConfigError, RolloutError
from tierserve.policy.keys import hash_key
from tierserve.policy.spec import Policy

if TYPE_CHECKING:
    from ray.serve.schema import (
        DeploymentSchema,
        ServeApplicationSchema,
        ServeDeploySchema,
        ServeInstanceDetails,
    )

__all__ = [
    "GATEWAY",
    "GatewayOptions",
    "PolicyFiles",
    "apply_policy",
    "deploy",
    "deploy_config",
    "gateway_options",
    "restart",
    "restart_options",
    "scale",
]

GATEWAY = "gateway"
RESTART_MARK = "TIERSERVE_RESTARTED_AT"
"""Set in a deployment's runtime environment by :func:`restart`: a new value is a new actor
option, so Serve replaces that deployment's replicas (and only those)."""


class PolicyFiles(BaseModel):
    """A policy as its files' text, for a deployer that cannot load one (Helm renders the
    chart's policy files into the gateway's ``user_config``): the replica writes them to a
    folder of its own and loads them there, as ``build_app`` loads the stack's."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="The policy file: a key of `files`.")
    calibrations: list[str] = Field(
        default_factory=list,
        description="Other versions of it, calibrated on other model versions: keys of `files` "
        "(as the stack config's policy_calibrations).",
    )
    files: dict[str, str] = Field(
        description="Every file the policy names, by its path relative to the policy file "
        "(e.g. `schemas/ticket.json`), with its text."
    )

    @model_validator(mode="after")
    def _names_are_inside(self) -> PolicyFiles:
        for name in (self.file, *self.calibrations):
            if name not in self.files:
                raise ValueError(f"{name!r} is not among the files {sorted(self.files)}")
        for name in self.files:
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ValueError(f"file {name!r} must be a relative path inside the policy folder")
        return self

    def load(self, stack: StackConfig) -> Policy:
        """The version of it calibrated on what this host serves, checked against ``stack``."""
        from tierserve.serve.calibration import servable_policy

        with tempfile.TemporaryDirectory(prefix="tierserve-policy-") as folder:
            for name, text in self.files.items():
                path = Path(folder, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            located = {
                "policy": Path(folder, self.file),
                "policy_calibrations": [Path(folder, name) for name in self.calibrations],
            }
            return servable_policy(stack.model_copy(update=located))


class GatewayOptions(BaseModel):
    """The gateway deployment's ``user_config``: what a running gateway changes in place."""

    model_config = ConfigDict(extra="forbid")

    policy: Policy | None = Field(
        default=None,
        description="The policy version to decide by, loaded and checked (`tierserve policy "
        "apply` sends it); none: the one the app was built with.",
    )
    policy_files: PolicyFiles | None = Field(
        default=None,
        description="Or the policy as its files (the Helm chart's form), loaded by the replica.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> GatewayOptions:
        if self.policy is not None and self.policy_files is not None:
            raise ValueError("give the policy or its files (policy_files), not both")
        return self

    def chosen(self, stack: StackConfig) -> Policy | None:
        """The policy these options name, for a gateway serving ``stack``."""
        if self.policy_files is not None:
            return self.policy_files.load(stack)
        return self.policy


def gateway_options(policy: Policy) -> dict[str, Any]:
    """``policy`` as the gateway's ``user_config``. Plain-text API keys travel as salted
    hashes: Serve shows a deployed config to anyone who can read its status."""
    data = policy.model_dump(mode="json")
    for tenant in data["tenants"]:
        plain = tenant.pop("api_keys", None) or []
        tenant["api_key_hashes"] = [*tenant.get("api_key_hashes", []), *map(hash_key, plain)]
    return GatewayOptions.model_validate({"policy": data}).model_dump(mode="json")


def deploy_config(app: ServeApp, *, port: int) -> ServeDeploySchema:
    """The serve config file's app as Serve's declarative config (how ``serve deploy`` reads
    it), its paths made absolute: the app is built in a Ray task, not in this directory."""
    from ray.serve.schema import ServeDeploySchema

    args = dict(app.args)
    args["policy"] = str(Path(args["policy"]).resolve())
    args["policy_calibrations"] = [
        str(Path(path).resolve()) for path in args.get("policy_calibrations", [])
    ]
    return ServeDeploySchema.model_validate(
        {
            "proxy_location": app.proxy_location,
            "http_options": {"host": app.host, "port": port},
            "applications": [
                {
                    "name": app.name,
                    "route_prefix": app.route_prefix,
                    "import_path": app.import_path,
                    "args": args,
                }
            ],
        }
    )


def deploy(config: ServeDeploySchema, *, timeout_s: float) -> None:
    """Deploys ``config`` to the running Serve and waits until each of its apps is running."""
    _client().deploy_apps(config)
    _wait_running([app.name for app in config.applications], timeout_s)


def apply_policy(
    app_name: str, policy_path: Path, calibrations: Sequence[Path] = (), *, timeout_s: float = 300
) -> Policy:
    """Makes the running app's gateways decide by the policy at ``policy_path`` (or the one of
    ``calibrations`` calibrated on what this host serves), in place: requests in flight finish
    under the version they began with. The policy is checked here against the running stack
    first, so a replica is never sent one it would refuse."""
    from tierserve.config import parse_config
    from tierserve.serve.calibration import servable_policy

    details, app = _running(app_name)
    stack = parse_config(app.args, source=f"app {app_name!r} as deployed")
    located = {"policy": policy_path, "policy_calibrations": list(calibrations)}
    policy = servable_policy(stack.model_copy(update=located))
    _redeploy(details, app, GATEWAY, {"user_config": gateway_options(policy)}, timeout_s)
    return policy


def scale(app_name: str, deployment: str, replicas: int, *, timeout_s: float = 600) -> None:
    """Sets ``deployment``'s replica count in place; nothing else restarts."""
    if replicas < 1:
        raise ConfigError(f"replicas {replicas} is below 1", hint="pass 1 or more")
    details, app = _running(app_name)
    _redeploy(details, app, deployment, {"num_replicas": replicas}, timeout_s)


def restart(app_name: str, deployment: str, *, surge: bool = True, timeout_s: float = 1800) -> None:
    """Replaces ``deployment``'s replicas; the app's other deployments keep running.

    With ``surge`` (the default), Serve's rolling update starts a new replica before it stops
    an old one (its ``max_surge_percent``: the deployment's own value where it has one, else
    one replica more at a time), so the deployment never has fewer running replicas than
    before. That needs room for one more replica (a GPU, on a GPU cluster); where there is
    none, the old replicas keep serving and the new one waits. Without it, Serve stops old
    replicas before their successors run: a tier of one replica is absent while its new one
    loads its model.
    """
    details, app = _running(app_name)
    config = _deployment_details(details, app_name, deployment)
    old = _replica_ids(details, app_name, deployment)
    options = restart_options(config, surge=surge)
    _redeploy(details, app, deployment, options, timeout_s, wait=False)
    _wait_replaced(app_name, deployment, old, timeout_s)
    _wait_running([app_name], timeout_s)


def restart_options(config: DeploymentSchema, *, surge: bool) -> dict[str, Any]:
    """The deployment options that make Serve replace ``config``'s replicas: a new restart
    mark in its runtime environment (a new actor option), and how many new replicas may run
    beside the old ones meanwhile."""
    options = dict(_given(config.ray_actor_options) or {})
    runtime_env = dict(options.get("runtime_env") or {})
    runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), RESTART_MARK: str(time.time())}
    options["runtime_env"] = runtime_env
    # Serve rounds the percentage up to whole replicas: 1 % is one replica more at a time.
    own = _given(config.max_surge_percent) or 1
    return {"ray_actor_options": options, "max_surge_percent": own if surge else 0}


def _given(value: Any) -> Any:
    """The value of a field of Serve's schema, or None where it was left unset: Serve fills
    those with its DEFAULT sentinel, which is truthy."""
    return None if isinstance(value, Enum) else value


def _running(app_name: str) -> tuple[ServeInstanceDetails, ServeApplicationSchema]:
    """The running Serve and ``app_name``'s deployed config, from Serve's controller."""
    import ray
    from ray.serve.exceptions import RayServeException
    from ray.serve.schema import ServeInstanceDetails

    if not ray.is_initialized():
        ray.init(address="auto", log_to_driver=False)
    try:
        details = ServeInstanceDetails(**_client().get_serve_details())
    except RayServeException as error:
        raise RolloutError(
            f"no Ray Serve is running in this Ray cluster ({error})",
            hint="start the stack (tierserve serve), or run this where `ray status` reaches it",
        ) from None
    app = details.applications.get(app_name)
    if app is None:
        running = sorted(details.applications)
        raise ConfigError(f"no app {app_name!r} runs here", hint=f"pass --app, one of {running}")
    if app.deployed_app_config is None:
        raise ConfigError(
            f"app {app_name!r} was deployed with serve.run, so Serve cannot change it in place",
            hint="start it with `tierserve serve` (or `serve deploy` of its config file)",
        )
    return details, app.deployed_app_config


def _client() -> Any:
    """Serve's controller client (private API: Ray exposes deploying a config only through
    its CLI and dashboard, and the stack runs without the dashboard)."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    if client is None:
        raise RolloutError("Ray Serve is not running here", hint="start the stack first")
    return client


def _deployment_details(
    details: ServeInstanceDetails, app_name: str, deployment: str
) -> DeploymentSchema:
    deployments = details.applications[app_name].deployments
    if deployment not in deployments:
        raise ConfigError(
            f"app {app_name!r} has no deployment {deployment!r}",
            hint=f"use one of {sorted(deployments)}",
        )
    return deployments[deployment].deployment_config


def _redeploy(
    details: ServeInstanceDetails,
    app: ServeApplicationSchema,
    deployment: str,
    options: Mapping[str, Any],
    timeout_s: float,
    *,
    wait: bool = True,
) -> None:
    """Deploys every running app's config again, ``app`` with ``options`` set on
    ``deployment``, and (``wait``) waits until ``app`` runs healthy again."""
    from ray.serve.schema import ServeDeploySchema

    _deployment_details(details, app.name, deployment)
    data = app.model_dump(exclude_unset=True)
    entries = [d for d in data.get("deployments", []) if d["name"] != deployment]
    current: dict[str, Any] = next(
        (d for d in data.get("deployments", []) if d["name"] == deployment), {}
    )
    data["deployments"] = [*entries, {**current, "name": deployment, **options}]
    others = [
        a.deployed_app_config.model_dump(exclude_unset=True)
        for name, a in details.applications.items()
        if name != app.name and a.deployed_app_config is not None
    ]
    config = ServeDeploySchema.model_validate(
        {
            "proxy_location": details.proxy_location,
            "http_options": details.http_options.model_dump(exclude_unset=True)
            if details.http_options
            else {},
            "applications": [*others, data],
        }
    )
    if wait:
        deploy(config, timeout_s=timeout_s)
    else:
        _client().deploy_apps(config)


def _replica_ids(details: ServeInstanceDetails, app_name: str, deployment: str) -> set[str]:
    """The running replicas of ``deployment``."""
    replicas = details.applications[app_name].deployments[deployment].replicas
    return {r.replica_id for r in replicas if str(r.state).endswith("RUNNING")}


def _wait_replaced(app_name: str, deployment: str, old: set[str], timeout_s: float) -> None:
    """Until none of the ``old`` replicas is left."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        details, _ = _running(app_name)
        every = {
            r.replica_id for r in details.applications[app_name].deployments[deployment].replicas
        }
        if not every & old:
            return
        time.sleep(2)
    raise RolloutError(
        f"{app_name}/{deployment}: its replicas were not replaced within {timeout_s:.0f} s",
        hint="see `serve status`; where there is no room for one more replica (a GPU), the "
        "new one waits for it: restart with --no-surge",
    )


def _wait_running(app_names: Sequence[str], timeout_s: float) -> None:
    """Until Serve reports each app RUNNING with every deployment HEALTHY (an update in
    progress shows DEPLOYING / UPDATING first)."""
    from ray import serve

    deadline = time.monotonic() + timeout_s
    time.sleep(1)  # the controller takes the new target before it reports on it
    last = "no status yet"
    while time.monotonic() < deadline:
        applications = serve.status().applications
        pending = {}
        for name in app_names:
            status = applications.get(name)
            state = str(getattr(status, "status", "missing"))
            if state.endswith("DEPLOY_FAILED"):
                message = str(getattr(status, "message", ""))[:2000]
                raise RolloutError(
                    f"app {name!r} failed to deploy: {message}",
                    hint="fix what the message names and deploy again",
                )
            if status is None or not state.endswith("RUNNING"):
                pending[name] = state
                continue
            for deployment, info in status.deployments.items():
                if not str(info.status).endswith("HEALTHY"):
                    pending[f"{name}/{deployment}"] = str(info.status)
        if not pending:
            return
        last = ", ".join(f"{k}: {v}" for k, v in pending.items())
        time.sleep(1)
    raise RolloutError(
        f"not running after {timeout_s:.0f} s ({last})",
        hint="see `serve status` and the replicas' logs under /tmp/ray/session_latest/logs/serve",
    )
