"""Issue 21, done when: per-user budgets on the real service, a signed webhook, /v1/check, and a restart.

Three users spend $0.00045, $0.0021 and $0.0009 against a per-user budget of $0.001/day: they are
listed separately, the second gets a webhook signed with the secret and `allow: false`, the first
`allow: true`. After a restart the entities are listed the same and nothing is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, http_json, make_request, make_span

SECRET = "whsec-test-0123456789abcdef"
INPUT_PRICE_PUSD = 150_000  # gpt-4o-mini: $0.15 per million input tokens, in pico-USD per token


class Receiver:
    """A local webhook endpoint that keeps every request's headers and body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


def config(receiver: Receiver) -> str:
    return f'''
[budget_options]
refresh_seconds = 0

[[budgets]]
name = "per-user"
limit_usd = 0.001
period = "day"
[budgets.scope]
each = "user.id"

[[webhooks]]
name = "test-hook"
url = "{receiver.url}"
secret = "{SECRET}"
events = ["threshold", "forecast"]
'''


def wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def send_spend(endpoint: str) -> None:
    """alice $0.00045 and carol $0.0009 as span attributes; bob $0.0021 as a resource attribute, in 3 spans."""
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(endpoint))

    def span(user: str | None, tokens: int) -> Any:
        attrs = genai_attributes("gpt-4o-mini", input_tokens=tokens, output_tokens=0)
        return make_span({**attrs, "user.id": user} if user else attrs)

    stub.Export(make_request([span("alice", 3000), span("carol", 6000)]), timeout=30)
    stub.Export(make_request([span(None, 7000), span(None, 4000), span(None, 3000)], {"user.id": "bob"}), timeout=30)


def test_per_user_budgets_webhook_and_check(tmp_path) -> None:
    receiver = Receiver()
    path = tmp_path / "lct.toml"
    path.write_text(config(receiver))
    svc = ServiceProcess(tmp_path / "store", "--config", str(path)).start()
    try:
        send_spend(svc.endpoint)
        status, listed = http_json(svc.http_url + "/v1/budgets")
        assert status == 200
        spent = {b["entity"]: b["spent_usd"] for b in listed["budgets"]}
        assert spent == {"alice": 0.00045, "bob": 0.0021, "carol": 0.0009}
        assert [b["entity"] for b in listed["budgets"]] == ["bob", "carol", "alice"]  # biggest spenders first
        assert {b["entity"]: b["status"] for b in listed["budgets"]} == {
            "alice": "ok", "bob": "exceeded", "carol": "warning"}
        assert listed["entity_budgets"][0]["tracked"] == 3 and listed["entity_budgets"][0]["folded"] == 0

        status, bob = http_json(svc.http_url + "/v1/check?user.id=bob&model=gpt-4o-mini")
        assert status == 200 and bob["allow"] is False
        assert bob["budgets"][0]["entity"] == "bob" and bob["budgets"][0]["status"] == "exceeded"
        status, alice = http_json(svc.http_url + "/v1/check?user.id=alice&model=gpt-4o-mini")
        assert status == 200 and alice["allow"] is True and alice["budgets"][0]["spent_usd"] == 0.00045
        status, dave = http_json(svc.http_url + "/v1/check?" + quote("user.id") + "=dave&model=gpt-4o-mini")
        assert dave["allow"] is True and dave["budgets"][0]["status"] == "untracked"

        wait_for(lambda: any(e["entity"] == "bob" for e in receiver.events()))
        wait_for(lambda: any(e["entity"] == "carol" for e in receiver.events()))
        time.sleep(2)  # a few more monitor rounds: nothing is sent twice
        for headers, body in receiver.received:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-llm-cost-signature"], expected)
        events = receiver.events()
        by_entity = {e["entity"]: e for e in events if e["event"] == "threshold"}
        assert set(by_entity) == {"bob", "carol"}  # alice is below every threshold
        assert by_entity["bob"]["threshold"] == 1.0 and by_entity["bob"]["spent_usd"] == "0.0021"
        assert by_entity["carol"]["threshold"] == 0.8
        assert "bob" in by_entity["bob"]["text"] and "100%" in by_entity["bob"]["text"]
        assert len([e for e in events if e["event"] == "threshold"]) == 2
        assert SECRET not in svc.log()
        sent_before = len(receiver.received)
        assert svc.stop() == 0

        svc = ServiceProcess(tmp_path / "store", "--config", str(path)).start()
        status, listed = http_json(svc.http_url + "/v1/budgets")
        assert {b["entity"]: b["spent_usd"] for b in listed["budgets"]} == spent
        time.sleep(3)  # monitor rounds after the restart: the delivered keys were read back
        assert len(receiver.received) == sent_before
        status, bob = http_json(svc.http_url + "/v1/check?user.id=bob&model=gpt-4o-mini")
        assert bob["allow"] is False
    finally:
        svc.stop()
        receiver.server.shutdown()
