"""collector-config/: the otelcol-contrib configs hold together and match our detector, and the documented
rotel command line, run for real in front of ``llm-cost-tracker run``, delivers the LLM spans and only those."""

from __future__ import annotations

import copy
import os
import re
import runpy
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_cost_tracker.transforms.detect import MODEL_KEYS, USAGE_KEYS, Detect
from llm_cost_tracker.types import Drop
from tests.deploy.conftest import COLLECTOR

CONFIGS = ("agent.yaml", "gateway.yaml")
DETECTOR_KEYS = set(MODEL_KEYS) | set(USAGE_KEYS)
OUR_EXPORTER = "otlp/llm-cost-tracker"
OUR_PIPELINE = "traces/llm-cost-tracker"
ENDPOINT = "${env:LLM_COST_TRACKER_ENDPOINT}"
TOKEN = "${env:LLM_COST_TRACKER_TOKEN}"


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((COLLECTOR / name).read_text()))


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The collector's merge of several --config files: maps merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def documented_variables() -> set[str]:
    readme = (COLLECTOR / "README.md").read_text()
    table = readme.split("## Environment", 1)[1].split("##", 1)[0]
    return set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.M))


def drop_condition_keys(config: dict[str, Any]) -> set[str]:
    """The attribute keys of our filter's drop condition, which must be a plain `A == nil and B == nil ...`."""
    (condition,) = config["processors"]["filter/llm-cost-tracker"]["traces"]["span"]
    terms = [t.strip() for t in condition.split(" and ")]
    keys = set()
    for term in terms:
        match = re.fullmatch(r'attributes\["([^"]+)"\] == nil', term)
        assert match, f"unexpected OTTL term {term!r}: this test evaluates only `attributes[...] == nil and ...`"
        keys.add(match.group(1))
    return keys


def would_drop(keys: set[str], attributes: dict[str, Any]) -> bool:
    return not any(k in attributes for k in keys)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("plaintext", [False, True], ids=["tls", "plaintext"])
def test_config_holds_together(name: str, plaintext: bool) -> None:
    """Every pipeline component is defined, every extension used is enabled, and only documented variables are read."""
    config = load(name)
    if plaintext:
        config = merge(config, load("plaintext.yaml"))
    service = config["service"]
    for pipeline in service["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{name}: {component} is used but not defined"
    used_exporters = {e for p in service["pipelines"].values() for e in p["exporters"]}
    for exporter in used_exporters:
        cfg = config["exporters"][exporter] or {}
        if "auth" in cfg:
            assert cfg["auth"]["authenticator"] in service["extensions"]
        storage = (cfg.get("sending_queue") or {}).get("storage")
        if storage:
            assert storage in service["extensions"] and storage.startswith("file_storage")
    for extension in service["extensions"]:
        assert extension in config["extensions"]
    text = (COLLECTOR / name).read_text() + (COLLECTOR / "plaintext.yaml").read_text()
    variables = set(re.findall(r"\$\{env:([A-Z_]+)\}", text))
    assert variables <= documented_variables(), sorted(variables - documented_variables())


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("plaintext", [False, True], ids=["tls", "plaintext"])
def test_only_our_endpoint_and_header(name: str, plaintext: bool) -> None:
    """Our pipeline exports to the documented endpoint only, with gzip, a disk queue, retries and one header: authorization."""
    config = load(name)
    if plaintext:
        config = merge(config, load("plaintext.yaml"))
    (exporter,) = config["service"]["pipelines"][OUR_PIPELINE]["exporters"]
    assert exporter.startswith(OUR_EXPORTER)
    cfg = config["exporters"][exporter]
    assert cfg["endpoint"] == ENDPOINT
    assert cfg["compression"] == "gzip"
    assert cfg["retry_on_failure"]["enabled"] is True
    assert cfg["sending_queue"]["enabled"] is True and cfg["sending_queue"]["storage"].startswith("file_storage/")
    if plaintext:
        assert cfg["tls"] == {"insecure": True}
        assert cfg["headers"] == {"authorization": f"Bearer {TOKEN}"}
        assert "auth" not in cfg
    else:
        assert "headers" not in cfg and cfg["tls"].get("insecure") is not True
        auth = config["extensions"][cfg["auth"]["authenticator"]]
        assert auth == {"scheme": "Bearer", "token": TOKEN}
    # Nothing else in the files points at llm-cost-tracker.
    for other, other_cfg in config["exporters"].items():
        if other != exporter and other != OUR_EXPORTER:
            assert other_cfg["endpoint"] != ENDPOINT


@pytest.mark.parametrize("name", CONFIGS)
def test_filter_is_the_detector(name: str) -> None:
    """The filter keeps a span exactly when it has one of the keys our detector prices from."""
    config = load(name)
    assert drop_condition_keys(config) == DETECTOR_KEYS
    pipelines = config["service"]["pipelines"]
    assert "filter/llm-cost-tracker" in pipelines[OUR_PIPELINE]["processors"]
    others = [p for n, p in pipelines.items() if n != OUR_PIPELINE]
    assert others and all("filter/llm-cost-tracker" not in p.get("processors", []) for p in others)
    assert all(p["receivers"] == pipelines[OUR_PIPELINE]["receivers"] for p in others), "both pipelines see every span"


def test_filter_keeps_every_dialect_and_drops_the_rest() -> None:
    """Spans in each dialect pass the collector filter and the detector; plain HTTP spans are dropped by both."""
    from llm_cost_tracker import testing

    keys = drop_condition_keys(load("agent.yaml"))
    detect = Detect()
    for attrs in (testing.genai_attributes(), testing.legacy_attributes(), testing.openinference_attributes()):
        assert not would_drop(keys, attrs), attrs
        record = testing.span_record(attributes={k: str(v) for k, v in attrs.items()})
        assert detect(record) is record, attrs
    plain = {"http.request.method": "GET", "url.path": "/v1/chat", "gen_ai.system": "openai"}
    assert would_drop(keys, plain)
    with pytest.raises(Drop):
        detect(testing.span_record(attributes=plain))


def test_rotel_processor_has_the_detector_keys() -> None:
    """The rotel processor keeps the same keys as the otelcol filter and the detector."""
    module = runpy.run_path(str(COLLECTOR / "rotel" / "genai_only.py"))
    assert set(module["KEYS"]) == DETECTOR_KEYS


def documented_rotel_command() -> list[str]:
    readme = (COLLECTOR / "README.md").read_text()
    (block,) = re.findall(r"```sh\n(rotel-agent start.*?)```", readme, flags=re.S)
    return shlex.split(block.replace("\\\n", " "))


def test_rotel_in_front_of_the_service(tmp_path: Path) -> None:
    """The README's rotel command line forwards the LLM spans (with the bearer token) and drops the rest."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from llm_cost_tracker.testing import (
        ServiceProcess,
        free_port,
        genai_attributes,
        openinference_attributes,
        rotel_agent_path,
        wait_listening,
    )

    token = "t0ken-for-the-rotel-test"
    svc = ServiceProcess(tmp_path / "store", "--auth-token", token).start()
    grpc_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ROTEL_"))}
    env.update(LLM_COST_TRACKER_ENDPOINT=svc.endpoint, LLM_COST_TRACKER_TOKEN=token)
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a) for a in documented_rotel_command()]
    argv[0] = rotel_agent_path()
    argv[argv.index("--otlp-grpc-endpoint") + 1] = f"127.0.0.1:{grpc_port}"
    argv[argv.index("--otlp-http-endpoint") + 1] = f"127.0.0.1:{http_port}"
    processor = argv.index("--otlp-with-trace-processor") + 1
    argv[processor] = str(COLLECTOR.parent / argv[processor])
    argv += ["--pid-file", str(tmp_path / "rotel.pid"), "--log-file", str(tmp_path / "rotel.log")]

    def send(endpoint: str, spans: list[tuple[str, dict[str, Any]]]) -> None:
        provider = TracerProvider(resource=Resource.create({"service.name": "behind-rotel"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True,
                                                                        headers={"authorization": f"Bearer {token}"}),
                                                       max_queue_size=10_000))
        tracer = provider.get_tracer("deploy-test")
        for name, attrs in spans:
            with tracer.start_as_current_span(name, attributes=attrs):
                pass
        assert provider.force_flush(30_000)
        provider.shutdown()

    def received(kind: str) -> float:
        match = re.search(rf'llm_pipeline_spans_received_total{{kind="{kind}"}} ([0-9.e+]+)', svc.metrics(token))
        return float(match.group(1)) if match else 0.0

    rotel = None
    try:
        # Control: a non-LLM span sent straight to the service is counted as "other".
        send(svc.endpoint, [("GET /", {"http.request.method": "GET"})])
        deadline = time.monotonic() + 30
        while received("other") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert received("other") == 1
        rotel_out = open(tmp_path / "rotel.out", "wb")  # noqa: SIM115 - closed with the process
        rotel = subprocess.Popen(argv, env=env, stdout=rotel_out, stderr=subprocess.STDOUT)
        wait_listening(grpc_port, rotel)  # rotel accepts spans (or has exited: asserted next)
        assert rotel.poll() is None, (tmp_path / "rotel.log").read_text() if (tmp_path / "rotel.log").exists() else ""
        spans = []
        for i in range(300):
            spans.append(("chat", genai_attributes(input_tokens=100 + i)))
            spans.append(("GET /health", {"http.request.method": "GET", "http.response.status_code": 200}))
        spans += [("llm", openinference_attributes(prompt=7)) for _ in range(50)]
        send(f"127.0.0.1:{grpc_port}", spans)
        deadline = time.monotonic() + 60
        while received("llm") < 350 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert received("llm") == 350, (argv, (tmp_path / "rotel.out").read_text())
        assert received("other") == 1, "rotel forwarded non-LLM spans"
        assert 'llm_pipeline_exports_total{code="UNAUTHENTICATED"}' not in svc.metrics(token)
    finally:
        if rotel is not None:
            rotel.send_signal(signal.SIGTERM)
            rotel.wait(20)
        code = svc.stop()
    assert code == 0
    (row,) = svc.sql("SELECT count() AS n, uniqExact(span_id) AS uniq, sum(input_tokens) AS tokens FROM llm_spans")
    assert (row["n"], row["uniq"]) == (350, 350)
    assert row["tokens"] == sum(100 + i for i in range(300)) + 50 * 7
