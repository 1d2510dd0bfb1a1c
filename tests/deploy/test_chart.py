"""The Helm chart: renders, validates against Kubernetes schemas, and runs only commands the CLI accepts."""

from __future__ import annotations

import dataclasses
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_cost_tracker.config import ENV_PREFIX, Settings
from tests.deploy.conftest import (
    ALERTS,
    CHART,
    DASHBOARDS,
    KUBE_VERSIONS,
    check_command,
    check_env_names,
    docs,
    port_of,
)

helm_python = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
CASES = {"default": None, **{p.stem: p for p in EXAMPLES}}
WORKLOADS = {  # the workloads each values case renders (a missing or an extra one is a chart bug)
    "default": {"all-in-one"},
    "all-in-one": {"all-in-one"},
    "distributed": {"receiver", "consumer", "scheduler", "migrate"},
    "locked-down": {"receiver", "consumer", "scheduler", "migrate"},
    "observability": {"all-in-one"},
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
# Custom resources of the Prometheus Operator: no built-in Kubernetes schema; checked by shape below.
CRD_GROUPS = ("monitoring.coreos.com/",)


def case_values(case: str) -> dict[str, Any]:
    path = CASES[case]
    if path is None:
        return {}
    return dict(helm_python.values_from_yaml(path.read_text()))


@pytest.fixture(scope="module")
def rendered(render: Any) -> Any:
    cache: dict[str, list[dict[str, Any]]] = {}

    def get(case: str) -> list[dict[str, Any]]:
        if case not in cache:
            cache[case] = docs(render(case_values(case)))
        return cache[case]

    return get


def workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rendered workloads by component label."""
    return {obj["metadata"]["labels"]["app.kubernetes.io/component"]: obj
            for obj in objects if obj["kind"] in WORKLOAD_KINDS}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"]["template"]["spec"])


def env_names(container: dict[str, Any]) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


def http_routes() -> set[str]:
    """The paths the service's HTTP port serves, read from a real HttpServer."""
    from prometheus_client import CollectorRegistry

    from llm_cost_tracker.httpserver import HttpServer

    server = HttpServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, ""))
    try:
        return {path for (_method, path) in server._routes}
    finally:
        server.stop()


def test_lint_strict() -> None:
    """`helm lint --strict` finds no error and no warning in the chart."""
    report = helm_python.lint(str(CHART), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("case", CASES)
def test_lint_strict_with_values(case: str) -> None:
    """Lint also passes with each documented values example."""
    report = helm_python.lint(str(CHART), case_values(case), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_manifests_validate_strict(case: str, version: str, rendered: Any) -> None:
    """Every rendered object is valid for Kubernetes with strict schemas (unknown fields rejected)."""
    objects = rendered(case)
    assert objects
    for obj in objects:
        where = f"{case}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith(CRD_GROUPS):
            assert obj["metadata"]["name"] and isinstance(obj["spec"], dict), where
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} is invalid for Kubernetes {version}: {exc.message} at {list(exc.path)}")


def test_every_values_case_has_its_expected_workloads() -> None:
    """Each values example is in the table of workloads it should render, and nothing else is."""
    assert set(WORKLOADS) == set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_renders_the_expected_workloads(case: str, rendered: Any) -> None:
    """A values case renders exactly the workloads it is meant to (all-in-one, or the distributed set)."""
    assert set(workloads(rendered(case))) == WORKLOADS[case]


@pytest.mark.parametrize(("case", "component"), [(c, w) for c in CASES for w in sorted(WORKLOADS.get(c, ()))])
def test_commands_match_cli(case: str, component: str, rendered: Any) -> None:
    """Each workload's arguments parse with build_parser(), its LCT_* variables are settings, and its ports match its flags."""
    obj = workloads(rendered(case))[component]
    spec = pod_spec(obj)
    (container,) = spec["containers"]
    where = f"{case}: {obj['kind']}/{obj['metadata']['name']}"
    check_env_names(env_names(container), where)
    ns = check_command(list(container["args"]), where)
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    if "grpc" in ports:
        assert getattr(ns, "otlp_grpc", None), f"{where}: a grpc port but no --otlp-grpc flag"
        assert port_of(ns.otlp_grpc) == ports["grpc"], where
    if "otlp-http" in ports:
        assert getattr(ns, "otlp_http", None), f"{where}: an otlp-http port but no --otlp-http flag"
        assert port_of(ns.otlp_http) == ports["otlp-http"], where
    if "http" in ports:
        http = getattr(ns, "http", None) or env.get(ENV_PREFIX + "HTTP") or Settings().http
        assert port_of(http) == ports["http"], f"{where}: probes and Service use {ports['http']}, process listens on {http}"
        host = http.rpartition(":")[0]
        assert host not in ("127.0.0.1", "localhost"), f"{where}: HTTP port bound to loopback; probes cannot reach it"


@pytest.mark.parametrize("case", CASES)
def test_probes_services_and_selectors_agree(case: str, rendered: Any) -> None:
    """Probes hit real routes on a declared port; Services, HPAs and PDBs select the pods they mean."""
    objects = rendered(case)
    routes = http_routes()
    pods = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            template = obj["spec"]["template"]
            selector = obj["spec"]["selector"]["matchLabels"]
            assert selector.items() <= template["metadata"]["labels"].items(), obj["metadata"]["name"]
            (container,) = template["spec"]["containers"]
            names = {p["name"] for p in container["ports"]}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                check = container[probe].get("httpGet") or container[probe]["tcpSocket"]
                assert check["port"] in names, (obj["metadata"]["name"], probe, check)
                if "path" in check:
                    assert check["path"] in routes, (obj["metadata"]["name"], probe, check)
            if "httpGet" in container["readinessProbe"]:
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            pods[obj["metadata"]["name"]] = (template["metadata"]["labels"], names, obj["kind"])
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "Service":
            matches = [p for p in pods.values() if obj["spec"]["selector"].items() <= p[0].items()]
            assert matches, f"Service {name} selects no pod"
            for port in obj["spec"]["ports"]:
                assert all(port["targetPort"] in m[1] for m in matches), (name, port)
        elif kind == "PodDisruptionBudget":
            sel = obj["spec"]["selector"]["matchLabels"]
            assert any(sel.items() <= p[0].items() for p in pods.values()), name
        elif kind == "HorizontalPodAutoscaler":
            target = obj["spec"]["scaleTargetRef"]
            assert pods.get(target["name"], (None, None, None))[2] == target["kind"], name
        elif kind == "StatefulSet":
            assert obj["spec"]["replicas"] == 1, "the embedded store is single-process"


@pytest.mark.parametrize("case", CASES)
def test_pods_are_locked_down(case: str, rendered: Any) -> None:
    """Non-root, read-only root file system, no capabilities, RuntimeDefault seccomp, requests and memory limits."""
    for obj in rendered(case):
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(obj)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), "writable /tmp on a read-only root"


@pytest.mark.parametrize("case", CASES)
def test_rendered_config_is_accepted_by_the_service(case: str, rendered: Any, tmp_path: Path) -> None:
    """config.toml, the plain LCT_* values and the price file load with the service's own loaders."""
    from llm_cost_tracker import config

    objects = rendered(case)
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and "config.toml" in o.get("data", {})]
    (tmp_path / "config.toml").write_text(cm["data"]["config.toml"])
    # Stand-ins for what the cluster provides: Secret values, and files mounted under /etc/llm-cost-tracker.
    from_secret = {"LCT_CLICKHOUSE_URL": "https://writer:pw@clickhouse:8443"}
    env: dict[str, str] = {}
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            for c in pod_spec(obj)["containers"]:
                for e in c.get("env", []):
                    env[e["name"]] = e["value"] if "value" in e else from_secret.get(e["name"], "from-a-secret")
    env = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    for name, value in env.items():
        if value.startswith("/etc/llm-cost-tracker/") and name != "LCT_CONFIG":
            local = tmp_path / value.removeprefix("/etc/llm-cost-tracker/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.touch()
            env[name] = str(local)
    env["LCT_CONFIG"] = str(tmp_path / "config.toml")
    if "pricing.yaml" in cm["data"]:
        (tmp_path / "pricing.yaml").write_text(cm["data"]["pricing.yaml"])
        env["LCT_PRICING_FILE"] = str(tmp_path / "pricing.yaml")
        from llm_cost_tracker.pricing._overrides import load_overrides

        errors: list[str] = []
        load_overrides(tmp_path / "pricing.yaml", errors)
        assert not errors, errors
    settings = config.load(environ=env)
    assert settings.log_format == "json"
    try:
        from llm_cost_tracker.budgets import load_budgets
    except ImportError:
        return
    load_budgets(str(tmp_path / "config.toml"))


def test_settings_exposed_by_the_schema() -> None:
    """config.settings accepts exactly the Settings fields the chart does not set from its own keys."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    exposed = set(schema["properties"]["config"]["properties"]["settings"]["properties"])
    managed = {"otlp_grpc", "otlp_http", "http", "auth_token", "data_dir", "clickhouse_url", "clickhouse_database",
               "pricing_file", "kafka_bootstrap", "kafka_topic", "kafka_idempotence", "kafka_compression",
               "kafka_group_id", "kafka_partitions", "kafka_security_protocol", "kafka_sasl_mechanism",
               "kafka_sasl_username", "kafka_sasl_password", "kafka_ssl_cafile", "kafka_ssl_certfile",
               "kafka_ssl_keyfile", "log_level", "log_format", "config_file", "tls_cert_file", "tls_key_file",
               "tls_client_ca_file", "clickhouse_ca_file", "clickhouse_client_cert_file",
               "clickhouse_client_key_file", "redaction_hmac_key", "sql_http", "metrics_token",
               "admin_tenant_from_payload", "forward_headers"}
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert exposed <= fields, f"schema offers settings the service rejects: {sorted(exposed - fields)}"
    missing = fields - exposed - managed
    assert not missing, f"Settings fields with no way to set them in the chart (add to values.schema.json): {sorted(missing)}"


BAD_VALUES = [
    ({"mode": "both"}, "/mode"),
    ({"ports": {"grpc": 70000}}, "/ports/grpc"),
    ({"receiver": {"replicas": 0}}, "/receiver/replicas"),
    ({"config": {"settings": {"batchsize": 5}}}, "batchsize"),
    ({"config": {"settings": {"ack": "never"}}}, "/config/settings/ack"),
    ({"kafka": {"bootstrap": "broker-without-port"}}, "/kafka/bootstrap"),
    ({"kafka": {"compression": "brotli"}}, "/kafka/compression"),
    ({"clickhouse": {"url": "http://user:secret@ch:8123"}}, "/clickhouse/url"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"allInOne": {"persistence": {"size": "lots"}}}, "/allInOne/persistence/size"),
    ({"replicaCount": 3}, "replicaCount"),
]


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_schema_rejects_bad_values(chart: Any, values: dict[str, Any], where: str) -> None:
    """A wrong value fails at install time with a message naming the key."""
    with pytest.raises(helm_python.HelmValuesError) as info:
        chart.render(values, name="lct")
    assert where in str(info.value)


TEMPLATE_FAILURES = [
    ({"mode": "distributed", "clickhouse": {"url": "http://ch:8123"}}, "needs kafka.bootstrap"),
    ({"mode": "distributed", "kafka": {"bootstrap": "k:9092"}}, "needs clickhouse.url"),
    ({"mode": "distributed", "kafka": {"bootstrap": "k:9092", "partitions": 3}, "clickhouse": {"url": "http://ch:8123"},
      "consumer": {"replicas": 4}}, "exceeds kafka.partitions"),
    ({"kafka": {"sasl": {"mechanism": "PLAIN"}}}, "kafka.sasl.existingSecret"),
]


@pytest.mark.parametrize(("values", "message"), TEMPLATE_FAILURES, ids=[m for _, m in TEMPLATE_FAILURES])
def test_inconsistent_values_fail_with_a_message(chart: Any, values: dict[str, Any], message: str) -> None:
    """Combinations the schema cannot express fail rendering with a clear message."""
    with pytest.raises(helm_python.HelmRenderError) as info:
        chart.render(values, name="lct")
    assert message in str(info.value)


def test_config_change_rolls_the_pods(render: Any) -> None:
    """The pod template carries a checksum of the ConfigMap, so a pricing change restarts the pods."""
    def checksum(values: dict[str, Any]) -> str:
        sts = workloads(docs(render(values)))["all-in-one"]
        return str(sts["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    base = checksum({})
    assert checksum({}) == base
    assert checksum({"pricing": {"overrides": {"aliases": {"a/x": "openai/gpt-4o"}}}}) != base
    assert checksum({"config": {"settings": {"batch_size": 5000}}}) != base


def test_secrets_come_from_existing_secrets(rendered: Any) -> None:
    """Credentials are secretKeyRefs to the user's Secrets, never values in the manifests."""
    objects = rendered("distributed")
    assert not [o for o in objects if o["kind"] == "Secret"]
    receiver = workloads(objects)["receiver"]
    env = {e["name"]: e for e in pod_spec(receiver)["containers"][0]["env"]}
    for name in ("LCT_AUTH_TOKEN", "LCT_CLICKHOUSE_URL", "LCT_KAFKA_SASL_USERNAME", "LCT_KAFKA_SASL_PASSWORD"):
        assert "secretKeyRef" in env[name]["valueFrom"], name
    assert env["LCT_KAFKA_SSL_CAFILE"]["value"].startswith("/etc/llm-cost-tracker/kafka-tls/")


def test_notes_name_the_collector_endpoint(render: Any) -> None:
    """NOTES.txt gives the Service DNS name and port that exist in the release."""
    for values, service in (({}, "lct-llm-cost-tracker"),
                            ({"mode": "distributed", "kafka": {"bootstrap": "k:9092"},
                              "clickhouse": {"url": "http://ch:8123"}}, "lct-llm-cost-tracker-receiver")):
        manifests = render(values)
        notes = manifests["llm-cost-tracker/templates/NOTES.txt"]
        assert f"{service}.observability.svc.cluster.local:4317" in notes
        services = {o["metadata"]["name"]: o for o in docs(manifests) if o["kind"] == "Service"}
        assert any(p["name"] == "grpc" and p["port"] == 4317 for p in services[service]["spec"]["ports"])


def test_prometheus_rule_is_deploy_prometheus_alerts(render: Any) -> None:
    """The PrometheusRule's groups are deploy/prometheus/alerts.yaml, read through the chart's link to deploy/."""
    objects = docs(render({"metrics": {"prometheusRule": {"enabled": True}}}))
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())


def test_prometheus_rule_fails_clearly_without_the_rules(tmp_path: Path) -> None:
    """A chart copied without the rules file fails to render the PrometheusRule with a message, not an empty rule."""
    import shutil

    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, symlinks=False, ignore=shutil.ignore_patterns("alerts.yaml"))
    assert not (copy / "files" / "deploy" / "prometheus" / "alerts.yaml").exists()
    with pytest.raises(helm_python.HelmRenderError, match="alerts.yaml"):
        helm_python.Chart.load(str(copy)).render({"metrics": {"prometheusRule": {"enabled": True}}}, name="lct")


def test_scraped_job_is_the_one_the_alerts_select(render: Any) -> None:
    """Prometheus names the job llm-cost-tracker whatever the release name, and the alert rules' job matchers match it."""
    import re

    objects = docs(render({"metrics": {"serviceMonitor": {"enabled": True}}}, name="acme"))
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    label = monitor["spec"]["jobLabel"]
    selected = [o for o in objects if o["kind"] == "Service"
                and monitor["spec"]["selector"]["matchLabels"].items() <= o["metadata"]["labels"].items()]
    assert selected and {o["metadata"]["labels"][label] for o in selected} == {"llm-cost-tracker"}
    patterns = re.findall(r'job=~?"([^"]+)"', ALERTS.read_text())
    assert patterns
    for pattern in patterns:
        assert re.fullmatch(pattern, "llm-cost-tracker"), pattern


def test_service_monitor_sends_a_metrics_token(render: Any) -> None:
    """With tokens, /metrics needs one: the ServiceMonitor sends the metrics token (else the admin token) from
    the auth Secret, and the receiving pods get LCT_METRICS_TOKEN and the admin-tenant setting from values."""
    def monitor_and_env(auth: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        objects = docs(render({"metrics": {"serviceMonitor": {"enabled": True}}, "auth": auth}))
        (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
        env = {e["name"]: e for e in pod_spec(workloads(objects)["all-in-one"])["containers"][0]["env"]}
        return monitor["spec"]["endpoints"][0], env

    endpoint, env = monitor_and_env({})
    assert "authorization" not in endpoint and "LCT_METRICS_TOKEN" not in env
    endpoint, env = monitor_and_env({"existingSecret": "lct-auth"})
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "lct-auth", "key": "token"}}
    assert "LCT_METRICS_TOKEN" not in env and "LCT_ADMIN_TENANT_FROM_PAYLOAD" not in env
    endpoint, env = monitor_and_env({"existingSecret": "lct-auth", "metricsTokenKey": "scrape",
                                     "adminTenantFromPayload": True})
    assert endpoint["authorization"]["credentials"] == {"name": "lct-auth", "key": "scrape"}
    assert env["LCT_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "lct-auth", "key": "scrape"}
    assert env["LCT_ADMIN_TENANT_FROM_PAYLOAD"]["value"] == "true"


def test_dashboards_are_deploy_grafana(render: Any) -> None:
    """One sidecar-labelled ConfigMap per deploy/grafana/*.json, with the file's exact text."""
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files
    objects = docs(render({"metrics": {"dashboards": {"enabled": True}}}))
    maps = {k: v for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["labels"].get("grafana_dashboard") == "1"
            for k, v in o["data"].items()}
    assert set(maps) == {f.name for f in files}
    for f in files:
        assert json.loads(maps[f.name]) == json.loads(f.read_text())


def test_packaged_chart_carries_only_rules_and_dashboards(tmp_path: Path) -> None:
    """`helm package` resolves the files/deploy link and leaves the rest of deploy/ out of the archive."""
    archive = helm_python.package(str(CHART), destination=str(tmp_path))
    with tarfile.open(archive) as tar:
        names = [m.name for m in tar.getmembers()]
        for m in tar.getmembers():
            assert not m.issym(), f"{m.name} is still a link in the archive"
    deployed = [n for n in names if "/files/deploy/" in n]
    stray = [n for n in deployed if not n.split("/files/deploy/")[1].startswith(("prometheus/", "grafana/"))]
    assert not stray, f"add these to .helmignore: {stray}"
    assert not [n for n in names if "/examples/" in n]
    if ALERTS.exists():
        assert "llm-cost-tracker/files/deploy/prometheus/alerts.yaml" in names


def test_all_in_one_exposes_the_sql_endpoint(render: Any) -> None:
    """allInOne: --sql-http on ports.sql, a ClusterIP Service port, a NetworkPolicy rule and the Grafana data source."""
    objects = docs(render({"sqlEndpoint": {"grafanaDatasource": {"enabled": True}},
                           "networkPolicy": {"sqlFrom": [{"podSelector": {"matchLabels": {"app": "grafana"}}}]}}))
    (sts,) = [o for o in objects if o["kind"] == "StatefulSet"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--sql-http") + 1] == "0.0.0.0:8123"
    assert {"name": "sql", "containerPort": 8123, "protocol": "TCP"} in container["ports"]
    (service,) = [o for o in objects if o["kind"] == "Service" and o["spec"].get("clusterIP") != "None"]
    assert service["spec"]["type"] == "ClusterIP"
    assert any(p["name"] == "sql" and p["port"] == 8123 and p["targetPort"] == "sql" for p in service["spec"]["ports"])
    (policy,) = [o for o in objects if o["kind"] == "NetworkPolicy"]
    (rule,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "sql"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "grafana"}}}]
    (datasource,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["labels"].get("grafana_datasource")]
    source = yaml.safe_load(next(iter(datasource["data"].values())))["datasources"][0]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["host"].split(".")[0] == service["metadata"]["name"]
    assert source["jsonData"]["port"] == 8123 and source["jsonData"]["secure"] is False
    secure = docs(render({"sqlEndpoint": {"grafanaDatasource": {"enabled": True}}, "tls": {"existingSecret": "tls"}}))
    (datasource,) = [o for o in secure if o["kind"] == "ConfigMap" and o["metadata"]["labels"].get("grafana_datasource")]
    assert yaml.safe_load(next(iter(datasource["data"].values())))["datasources"][0]["jsonData"]["secure"] is True
    off = docs(render({"sqlEndpoint": {"enabled": False}}))
    (sts,) = [o for o in off if o["kind"] == "StatefulSet"]
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--sql-http") + 1] == "off"
    assert not [p for o in off if o["kind"] == "Service" for p in o["spec"]["ports"] if p["name"] == "sql"]
