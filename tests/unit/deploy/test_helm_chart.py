"""The Helm chart rendered by Helm's own Go library (helm-python-sdk), every object validated
against the Kubernetes schemas (kubernetes-validate) and the RayService CRD of KubeRay."""

import base64
import functools
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.fakes import STACK_TIERS
from tierserve.config import StackConfig, load_config, parse_config
from tierserve.policy.spec import load_policy
from tierserve.serve.ingress import HAPROXY_RETRIES

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "helm/tierserve"
KUBERNETES = "1.30.0"
HOST = {"host": "llm.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
EXAMPLES = {
    "defaults": (None, "serve_configs/gpu-single-80gb.yaml"),
    "single-gpu": (CHART / "examples/single-gpu.yaml", "serve_configs/gpu-single-80gb.yaml"),
    "gpu-cluster": (CHART / "examples/gpu-cluster.yaml", "serve_configs/gpu-cluster.yaml"),
}


@functools.cache
def chart() -> helm.Chart:
    return helm.Chart.load(str(CHART))


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    manifests = chart().render(values, name="prod", namespace="ml", is_install=True)
    return [
        document
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document
    ]


def example(name: str) -> dict[str, Any] | None:
    path = EXAMPLES[name][0]
    return None if path is None else yaml.safe_load(path.read_text())


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@functools.cache
def rayservice_schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "tests/data/kuberay/ray.io_rayservices.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def served_stack(objects: list[dict[str, Any]]) -> StackConfig:
    (service,) = of_kind(objects, "RayService")
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    (app,) = serve_config["applications"]
    assert app["import_path"] == "tierserve.serve.app:build_app"
    return parse_config(app["args"], source="rendered serveConfigV2")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_object_validates_against_kubernetes_and_kuberay(name: str) -> None:
    objects = render(example(name))
    assert {o["kind"] for o in objects} >= {"RayService", "ConfigMap"}
    for obj in objects:
        if obj["kind"] == "RayService":
            jsonschema.validate(obj, rayservice_schema())
            # The serve Service KubeRay makes from it is a Service like any other.
            service = {"apiVersion": "v1", "kind": "Service", **obj["spec"]["serveService"]}
            kubernetes_validate.validate(service, KUBERNETES, strict=True)
        elif obj["apiVersion"].startswith("monitoring.coreos.com/"):
            assert obj["kind"] in ("PodMonitor", "PrometheusRule")  # Prometheus Operator CRDs
        else:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_traffic_reaches_only_the_cluster_kuberay_says_is_serving(name: str) -> None:
    """The chart's Service is KubeRay's serve Service, whose selector KubeRay sets to the
    serving cluster (ray.io/cluster): during an upgrade the pods of a new cluster, tiers still
    loading, get no traffic. A Service of the chart's own, selecting ray.io/serve alone, did."""
    values = {**(example(name) or {}), "ingress": {"enabled": True, "hosts": [HOST]}}
    objects = render(values)
    assert not of_kind(objects, "Service")
    (rayservice,) = of_kind(objects, "RayService")
    service = rayservice["spec"]["serveService"]
    assert service["metadata"]["name"] == "prod-tierserve"
    assert "selector" not in service["spec"]  # KubeRay's to set
    (port,) = service["spec"]["ports"]
    assert port["name"] == "serve"  # the name KubeRay keeps (it drops other ports)
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    assert {"containerPort": 8000, "name": "serve"} in head["containers"][0]["ports"]
    (ingress,) = of_kind(objects, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "prod-tierserve", "port": {"name": "serve"}}
    assert rayservice["spec"]["upgradeStrategy"] == {"type": "NewCluster"}
    kept = render({"upgradeStrategy": {"type": "None"}})
    assert of_kind(kept, "RayService")[0]["spec"]["upgradeStrategy"] == {"type": "None"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_served_stack_is_the_shipped_gpu_serve_config(name: str) -> None:
    stack = served_stack(render(example(name)))
    shipped = load_config(ROOT / EXAMPLES[name][1])
    assert stack.tiers == shipped.tiers
    assert stack.gateway == shipped.gateway and stack.cascade == shipped.cascade
    assert stack.observe.database_url == shipped.observe.database_url
    assert str(stack.policy) == "/etc/tierserve/policy/support.yaml"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_gpu_workers_request_and_limit_their_gpus(name: str) -> None:
    values = example(name) or {}
    groups = values.get("workerGroups") or chart().values["workerGroups"]
    (service,) = of_kind(render(example(name)), "RayService")
    rendered = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert [g["groupName"] for g in rendered] == [g["name"] for g in groups]
    for group, spec in zip(groups, rendered, strict=True):
        (container,) = spec["template"]["spec"]["containers"]
        resources = container["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == group["gpus"]
        assert resources["requests"]["nvidia.com/gpu"] == group["gpus"]
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"


def test_the_gpu_configs_fit_their_gpus() -> None:
    """Per GPU, the engines' memory shares and Ray's GPU fractions stay within one GPU."""
    single = load_config(ROOT / "serve_configs/gpu-single-80gb.yaml")
    assert sum(t.num_gpus for t in single.tiers) <= 1.0
    assert sum(t.gpu_memory_utilization or 0 for t in single.tiers) <= 0.9
    cluster = load_config(ROOT / "serve_configs/gpu-cluster.yaml")
    large = cluster.tier("large")
    assert large.parallel_workers == 4 and large.ray_options()["placement_group_bundles"]
    shared = [t for t in cluster.tiers if t.parallel_workers == 1]
    assert all(t.num_gpus * 2 <= 1.0 and (t.gpu_memory_utilization or 0) <= 0.45 for t in shared)


def mounted_policy(objects: list[dict[str, Any]], folder: Path) -> Path:
    """The policy files as the head pod mounts them from the rendered ConfigMap."""
    (service,) = of_kind(objects, "RayService")
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    (config_map,) = [
        c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-policy")
    ]
    policy_dir = folder / "policy"
    for item in head["volumes"][0]["configMap"]["items"]:
        path = policy_dir / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_map["data"][item["key"]])
    return policy_dir


@pytest.mark.parametrize(
    ("listed", "holds"),
    [([], {"northbank", "internal"}), (["northbank"], {"northbank"})],
)
def test_an_existing_secret_needs_keys_only_for_the_tenants_that_have_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listed: list[str], holds: set[str]
) -> None:
    """Not for the default tenant, whose callers bring no key: a Secret without one was
    refused when the app started."""
    objects = render({"apiKeys": {"existingSecret": "keys", "existingSecretTenants": listed}})
    assert not of_kind(objects, "Secret")
    for tenant in holds:  # only what the Secret holds is in the environment
        monkeypatch.setenv(f"TIERSERVE_API_KEYS_{tenant.upper()}", f"sk-{tenant}-from-secret")
    policy = load_policy(mounted_policy(objects, tmp_path) / "support.yaml", STACK_TIERS)
    keyed = {t.id for t in policy.tenants if t.api_keys}
    assert keyed == holds and policy.default_tenant not in keyed


def test_api_keys_go_to_a_secret_never_to_a_configmap(tmp_path: Path) -> None:
    keys = {"northbank": ["sk-northbank-live-0001"], "internal": ["sk-internal-live-0002"]}
    objects = render({"apiKeys": {"tenants": keys, "required": True}})
    for config_map in of_kind(objects, "ConfigMap"):
        text = json.dumps(config_map)
        assert "sk-northbank-live-0001" not in text and "sk-" not in text
    (secret,) = of_kind(objects, "Secret")
    assert (
        base64.b64decode(secret["data"]["TIERSERVE_API_KEYS_NORTHBANK"])
        == b"sk-northbank-live-0001"
    )
    (service,) = of_kind(objects, "RayService")
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    # The mounted policy loads, with each tenant's keys from its Secret's variable.
    policy_dir = mounted_policy(objects, tmp_path)
    environment = {
        "TIERSERVE_API_KEYS_NORTHBANK": "sk-northbank-live-0001",
        "TIERSERVE_API_KEYS_INTERNAL": "sk-internal-live-0002",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        policy = load_policy(policy_dir / "support.yaml", STACK_TIERS)
    tenants = {t.id: t for t in policy.tenants}
    assert tenants["northbank"].api_keys == ["sk-northbank-live-0001"]
    assert tenants["northbank"].allowed_tiers == ["medium", "large"]
    assert policy.auth.require_keys  # apiKeys.required reaches the policy
    shipped = load_policy(ROOT / "serve_configs/policies/support.yaml", STACK_TIERS)
    assert policy.routes == shipped.routes
    for name, spec in shipped.schemas.items():  # the same schema, read from another folder
        assert policy.schemas[name].model_copy(update={"source": spec.source}) == spec


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"service": {"type": "Public", "port": 8000}}, "at '/service/type': value must be one of"),
        (
            {"upgradeStrategy": {"type": "Incremental"}},
            "at '/upgradeStrategy/type': value must be one of",
        ),
        (
            {
                "workerGroups": [
                    {"name": "gpu", "replicas": 1, "minReplicas": 1, "maxReplicas": 1, "gpus": -1}
                ]
            },
            "at '/workerGroups/0/gpus': minimum: got -1, want 0",
        ),
        ({"stack": {"policy": "/x.yaml"}}, "remove stack.policy"),
        # The stack's own schema, generated from StackConfig: a misspelt field is refused at
        # install, not when Serve starts the app.
        (
            {"stack": {"tiers": [{"name": "small", "model": "/m", "gpu_mem_util": 0.4}]}},
            "at '/stack/tiers/0': additional properties 'gpu_mem_util' not allowed",
        ),
        (
            {"stack": {"cascade": {"tier_timeout_s": 0}}},
            "at '/stack/cascade/tier_timeout_s': exclusiveMinimum",
        ),
        ({"networkPolicy": {"enabeld": False}}, "additional properties 'enabeld' not allowed"),
        ({"ingress": {"hosts": ["x"]}}, "at '/ingress/hosts/0': got string, want object"),
        ({"metrics": {"podMonitor": {"enable": True}}}, "additional properties 'enable'"),
        ({"apiKeys": {"tenants": {"bank": ["short"]}}}, "at '/apiKeys/tenants/bank/0'"),
        ({"policy": {"file": "missing.yaml"}}, 'policy.file "missing.yaml" is not among'),
        (
            {"apiKeys": {"existingSecret": "keys", "existingSecretTenants": ["nortbank"]}},
            'apiKeys.existingSecretTenants: "nortbank" is not a tenant of policy support.yaml',
        ),
        # A misspelt tenant would leave the real one without keys: every call a 401.
        (
            {"apiKeys": {"tenants": {"northbnak": ["sk-northbank-live-0001"]}}},
            'apiKeys.tenants.northbnak: "northbnak" is not a tenant of policy support.yaml '
            "(its tenants: public, northbank, internal)",
        ),
    ],
)
def test_bad_values_are_refused_with_a_readable_message(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError), match=re.escape(message)):
        render(values)


def test_monitoring_objects_carry_the_shipped_rules_and_dashboard() -> None:
    objects = render(example("single-gpu"))
    (rule,) = of_kind(objects, "PrometheusRule")
    shipped = yaml.safe_load((ROOT / "deploy/observability/prometheus-rules.yaml").read_text())
    assert rule["spec"] == shipped
    (monitor,) = of_kind(objects, "PodMonitor")
    assert monitor["spec"]["podMetricsEndpoints"][0] == {
        "port": "serve",
        "path": "/metrics",
        "interval": "30s",
    }
    (dashboard,) = [
        c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["tierserve-dashboard.json"])
    assert board == json.loads((ROOT / "deploy/observability/grafana-dashboard.json").read_text())
    (ingress,) = of_kind(objects, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "llm.example.com"


def test_the_chart_bundles_the_repository_files_unchanged() -> None:
    pairs = [
        *(
            (CHART / "files/policy" / p.relative_to(ROOT / "serve_configs/policies"), p)
            for p in (ROOT / "serve_configs/policies").rglob("*")
            if p.is_file() and "calibrated" not in p.name
        ),
        *(
            (CHART / "files/observability" / p.name, p)
            for p in (ROOT / "deploy/observability").iterdir()
        ),
    ]
    for bundled, source in pairs:
        assert bundled.read_bytes() == source.read_bytes(), (
            f"{bundled} differs from {source}: make chart-files"
        )


def test_helm_lint_finds_no_errors() -> None:
    for name in sorted(EXAMPLES):
        report = helm.lint(str(CHART), example(name), strict=False)
        assert report["errors"] == [] and all(m["severity"] < 3 for m in report["messages"]), report


def test_ray_ports_are_open_only_to_the_release_s_own_pods() -> None:
    (fence,) = of_kind(render(), "NetworkPolicy")
    spec = fence["spec"]
    own, serving, dashboard = spec["ingress"]
    assert own["from"] == [{"podSelector": spec["podSelector"]}] and "ports" not in own
    assert serving["ports"] == [{"port": "serve", "protocol": "TCP"}] and "from" not in serving
    assert dashboard["ports"] == [{"port": 8265, "protocol": "TCP"}]
    operator = dashboard["from"][0]["podSelector"]["matchLabels"]
    assert operator == {"app.kubernetes.io/name": "kuberay-operator"}
    assert not of_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_a_restricted_endpoint_stays_open_to_kuberay_and_prometheus() -> None:
    """KubeRay's operator checks the head's Serve proxy on the serve port (its serve label,
    hence the Service's endpoints, follows), and Prometheus scrapes /metrics there."""
    apps = {"namespaceSelector": {"matchLabels": {"team": "apps"}}}
    prometheus = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    values = {"networkPolicy": {"servingFrom": [apps], "metricsFrom": [prometheus]}}
    (fence,) = of_kind(render(values), "NetworkPolicy")
    serving = fence["spec"]["ingress"][1]
    assert serving["ports"] == [{"port": "serve", "protocol": "TCP"}]
    operator = {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator"}},
    }
    assert serving["from"] == [apps, operator, prometheus]


def test_the_public_example_serves_only_the_api_to_known_keys(tmp_path: Path) -> None:
    objects = render(example("single-gpu"))
    (ingress,) = of_kind(objects, "Ingress")
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/v1"]  # not /metrics, /healthz or Serve's /-/ paths
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIERSERVE_API_KEYS_NORTHBANK", "sk-northbank-change-me")
        patch.setenv("TIERSERVE_API_KEYS_INTERNAL", "sk-internal-change-me")
        policy = load_policy(mounted_policy(objects, tmp_path) / "support.yaml", STACK_TIERS)
    assert policy.auth.require_keys


def test_the_stack_schema_is_generated_from_the_stack_config() -> None:
    import subprocess
    import sys

    found = subprocess.run(
        [sys.executable, str(ROOT / "scripts/chart_values_schema.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stdout


@pytest.mark.parametrize(("ingress", "haproxy"), [("proxy", "0"), ("haproxy", "1")])
def test_every_ray_pod_gets_the_stack_s_ingress(ingress: str, haproxy: str) -> None:
    """Ray Serve reads its ingress from the environment at start: every Ray container (head
    and workers) carries the one `stack.gateway.ingress` names."""
    values = {"stack": {"gateway": {"ingress": ingress}}}
    (service,) = of_kind(render(values), "RayService")
    cluster = service["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    for pod in pods:
        (container,) = pod["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == haproxy
        retries = {name: env.get(name) for name in HAPROXY_RETRIES}
        assert retries == (dict(HAPROXY_RETRIES) if haproxy == "1" else dict.fromkeys(retries))
    assert served_stack(render(values)).gateway.ingress == ingress


def served_app(values: dict[str, Any] | None) -> dict[str, Any]:
    (service,) = of_kind(render(values), "RayService")
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    return dict(app)


def test_a_policy_change_reaches_only_the_gateway_s_user_config() -> None:
    """KubeRay updates a running app in place when only deployment options change (the app's
    args are its code version: a change there restarts every tier)."""
    from tierserve.serve.rollout import GatewayOptions

    app = served_app(None)
    (gateway,) = app["deployments"]
    assert gateway["name"] == "gateway"
    options = GatewayOptions.model_validate(gateway["user_config"])
    policy = options.chosen(parse_config(app["args"], source="rendered serveConfigV2"))
    bundled = load_policy(CHART / "files/policy/support.yaml", STACK_TIERS)
    assert policy is not None and policy.version == bundled.version
    assert policy.routes == bundled.routes
    assert {k: v.json_schema for k, v in policy.schemas.items()} == {
        k: v.json_schema for k, v in bundled.schemas.items()
    }

    files = {
        str(path.relative_to(CHART / "files/policy")): path.read_text()
        for path in (CHART / "files/policy").rglob("*")
        if path.is_file()
    }
    files["support.yaml"] = files["support.yaml"].replace(
        f"version: {bundled.version}", f"version: {bundled.version}-next"
    )
    changed = served_app({"policy": {"files": files}})
    assert changed["args"] == app["args"]
    (next_gateway,) = changed["deployments"]
    next_policy = GatewayOptions.model_validate(next_gateway["user_config"]).policy_files
    assert next_policy is not None
    assert f"version: {bundled.version}-next" in next_policy.files["support.yaml"]


def test_an_existing_policy_config_map_is_not_copied_into_the_serve_config() -> None:
    app = served_app({"policy": {"existingConfigMap": "my-policy"}})
    assert "deployments" not in app


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_pod_counts_only_its_own_gateway_replicas(name: str) -> None:
    """The Prometheus multiprocess directory is node-local: on the state volume, which every
    Ray pod mounts, each pod's /metrics would add up the other pods' replicas too."""
    objects = render(example(name))
    (rayservice,) = of_kind(objects, "RayService")
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in head["containers"][0]["env"]}
    (app,) = yaml.safe_load(rayservice["spec"]["serveConfigV2"])["applications"]
    # Unset, the pod would take it under its own TIERSERVE_STATE_DIR.
    default = Path(env["TIERSERVE_STATE_DIR"], "metrics")
    metrics_dir = Path(app["args"].get("observe", {}).get("metrics_dir") or default)
    assert not metrics_dir.is_relative_to(env["TIERSERVE_STATE_DIR"])
    assert not any(
        metrics_dir.is_relative_to(mount["mountPath"])
        for mount in head["containers"][0]["volumeMounts"]
    )
