"""Webhooks (``[[webhooks]]``): signed JSON posts for budget thresholds, forecasts, anomalies, unpriced spend.

Each event has a key naming what it is about and when (budget, entity, period start, threshold; or
series and hour); a key is delivered once per webhook. Delivered keys are stored in
``budget_notifications`` (migration 0010) and read back at start-up, so a restart does not send
them again; before each delivery the table is asked too, so replicas sharing the store send an event
once unless they decide it within the same moment. A delivery is retried with exponential backoff; after the last attempt the key is given
up for this process (logged and counted; a restart tries again). The body is signed with the
webhook's secret: ``X-LLM-Cost-Signature: sha256=<hex HMAC-SHA256 of the raw body>``. Neither the
secret nor the URL (a Slack URL is a credential) is ever logged: a webhook is named by its ``name``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llm_cost_tracker.budgets._config import BudgetConfigError
from llm_cost_tracker.budgets._sql import quote
from llm_cost_tracker.log import get_logger

__all__ = ["EVENTS", "SIGNATURE_HEADER", "Event", "Webhook", "WebhookSender", "parse_webhooks", "sign"]

log = get_logger("budgets")
EVENTS = ("threshold", "forecast", "anomaly", "unpriced")
SIGNATURE_HEADER = "X-LLM-Cost-Signature"
NOTIFICATIONS_TABLE = "budget_notifications"
WEBHOOK_KEYS = {"name", "url", "secret", "secret_env", "events", "max_attempts", "timeout_seconds"}


@dataclass(frozen=True, slots=True)
class Webhook:
    """One ``[[webhooks]]`` table."""

    name: str
    url: str = field(repr=False)
    secret: str = field(repr=False)
    events: frozenset[str] = frozenset(EVENTS)
    max_attempts: int = 6
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Event:
    """A notification: ``kind`` (one of :data:`EVENTS`), its dedup ``key`` and JSON ``payload`` (with ``text``)."""

    kind: str
    key: str
    payload: Mapping[str, Any]


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_webhooks(sections: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[Webhook]:
    """The ``[[webhooks]]`` tables; raises BudgetConfigError listing every problem (never a secret)."""
    environ = os.environ if environ is None else environ
    raw = sections.get("webhooks", [])
    problems: list[str] = []
    if isinstance(raw, dict):
        problems.append("webhooks: write each webhook as a [[webhooks]] table (an array of tables)")
        raw = []
    out = []
    for i, table in enumerate(raw):
        where = f"webhooks[{i}]"
        if not isinstance(table, dict):
            problems.append(f"{where}: expected a table")
            continue
        for key in sorted(table.keys() - WEBHOOK_KEYS):
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(sorted(WEBHOOK_KEYS))})")
        name = table.get("name", where)
        url = table.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(f"{where}.url: required, an http:// or https:// URL")
        secret = table.get("secret", "")
        if "secret_env" in table:
            secret = environ.get(str(table["secret_env"]), "")
            if not secret:
                problems.append(f"{where}.secret_env: the environment variable {table['secret_env']!r} is empty or unset")
        if not isinstance(secret, str) or len(secret) < 16:
            problems.append(f"{where}.secret: required, at least 16 characters (or secret_env = \"VAR\")")
        events = table.get("events", list(EVENTS))
        if not isinstance(events, list) or not events or not set(events) <= set(EVENTS):
            problems.append(f"{where}.events: a non-empty list of {', '.join(EVENTS)}")
            events = list(EVENTS)
        attempts = table.get("max_attempts", 6)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
            problems.append(f"{where}.max_attempts: an integer in 1..20")
        timeout = table.get("timeout_seconds", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            problems.append(f"{where}.timeout_seconds: a number > 0")
        if not any(p.startswith(where) for p in problems):
            out.append(Webhook(str(name), str(url), str(secret), frozenset(events), int(attempts), float(timeout)))
    if problems:
        raise BudgetConfigError(problems)
    return out


class WebhookSender:
    """Delivers events to every webhook subscribed to their kind, once per key, on one thread.

    Args:
        webhooks: the configured webhooks.
        client: the budget service's store client (None: dedup in memory only).
        lock: serialises calls on ``client``.
        backoff: seconds before retry n (1-based): ``backoff * 2**(n-1)``, at most 300.
        post: sends (url, body, headers, timeout) and returns the HTTP status (tests may pass their own).
    """

    def __init__(self, webhooks: list[Webhook], client: Any, lock: threading.Lock, backoff: float = 1.0,
                 post: Callable[[str, bytes, dict[str, str], float], int] | None = None) -> None:
        self.webhooks = webhooks
        self._client = client
        self._lock = lock
        self._backoff = backoff
        self._post = post or _post
        self._done: set[tuple[str, str]] = set()
        """(webhook, key) delivered, queued or given up: never queued twice."""
        self._queue: queue.Queue[tuple[Webhook, Event] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def load(self) -> None:
        """Read the keys delivered before (within the table's 62-day TTL)."""
        if self._client is None or not self.webhooks:
            return
        with self._lock:
            rows = self._client.query(f"SELECT webhook, key FROM {NOTIFICATIONS_TABLE} FINAL").result_rows
        self._done.update((str(w), str(k)) for w, k in rows)

    def start(self) -> None:
        if self.webhooks and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="budget-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def wants(self, *kinds: str) -> bool:
        """Whether any webhook subscribes to one of ``kinds`` (events nobody wants are not even built)."""
        return any(kind in hook.events for hook in self.webhooks for kind in kinds)

    def submit(self, event: Event) -> None:
        for hook in self.webhooks:
            if event.kind in hook.events and (hook.name, event.key) not in self._done:
                self._done.add((hook.name, event.key))
                self._queue.put((hook, event))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            hook, event = item
            self._deliver(hook, event)

    def _delivered_elsewhere(self, webhook: str, key: str) -> bool:
        """Whether another replica sharing the store delivered this event since start-up."""
        if self._client is None:
            return False
        try:
            with self._lock:
                rows = self._client.query(f"SELECT count() FROM {NOTIFICATIONS_TABLE} WHERE webhook = {quote(webhook)} "
                                          f"AND key = {quote(key)}").result_rows
        except Exception:  # cannot tell: send (a duplicate is better than a lost notification)
            return False
        return bool(rows and rows[0][0])

    def _deliver(self, hook: Webhook, event: Event) -> None:
        if self._delivered_elsewhere(hook.name, event.key):
            return
        body = json.dumps({"event": event.kind, "id": event.key, **event.payload,
                           "sent_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")},
                          sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(hook.secret, body),
                   "User-Agent": "llm-cost-tracker-webhook"}
        for attempt in range(1, hook.max_attempts + 1):
            try:
                status = self._post(hook.url, body, headers, hook.timeout_seconds)
                error = f"HTTP {status}"
            except Exception as exc:  # any failure of one attempt is retried; the thread goes on
                status, error = 0, type(exc).__name__
            if 200 <= status < 300:
                self.delivered += 1
                self._remember(hook.name, event.key)
                log.info("webhook delivered", webhook=hook.name, kind=event.kind, attempt=attempt)
                return
            if attempt < hook.max_attempts:
                time.sleep(min(300.0, self._backoff * 2 ** (attempt - 1)))
        self.failed += 1
        log.error("webhook not delivered: giving up until restart", webhook=hook.name, kind=event.kind,
                  attempts=hook.max_attempts, error=error)

    def _remember(self, webhook: str, key: str) -> None:
        if self._client is None:
            return
        try:
            with self._lock:
                self._client.insert(NOTIFICATIONS_TABLE, [[key, webhook]], column_names=["key", "webhook"])
        except Exception as exc:  # delivered but not remembered: a restart may send it again (said in the log)
            log.warning("webhook delivery not recorded; a restart may resend it", webhook=webhook,
                        error=type(exc).__name__)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked at parse
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
