"""Per-entity budgets against a real chDB store: spend per entity from store + ledger, the cap and
`other`, admissions persisted across a new service, run-time budgets persisted, events deduplicated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from llm_cost_tracker.budgets import BudgetCollector, BudgetService, parse_budget, parse_budgets
from llm_cost_tracker.budgets._ledger import SpendLedger
from llm_cost_tracker.budgets._monitor import budget_events
from llm_cost_tracker.budgets._sql import quote
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.storage.client import connect

from .conftest import NS, USD, rec

NOW = int(datetime(2025, 6, 18, 12, 0, tzinfo=UTC).timestamp()) * NS
H = 3600 * NS
PER_USER = {"name": "per-user", "limit_usd": 10, "period": "day", "scope": {"each": "user.id", "tenant": "acme"}}


def service(store_settings, budgets: list[dict]) -> BudgetService:
    parsed, options = parse_budgets({"budgets": budgets})
    return BudgetService(parsed, connect(store_settings), options=options, clock=lambda: NOW)


def user(at: int, cost: int, name: str, *, resource: bool = False, **kw) -> object:
    r = rec(at, cost, attributes={} if resource else {"user.id": name}, **kw)
    if resource:
        r.resource_attributes["user.id"] = name
    return r


def test_spend_per_entity_from_store_and_ledger(store, store_settings) -> None:
    """Each user's spend: its stored rows (span or resource attribute) + its pending spend; other tenants,
    yesterday, unpriced spans and spans without the attribute count for no user."""
    ClickHouseSink(store).write([
        user(NOW - H, 2 * USD, "alice"), user(NOW - H, 3 * USD, "bob", resource=True),
        user(NOW - H, 7 * USD, "alice", tenant="beta"), user(NOW - 13 * H, 5 * USD, "alice"),  # yesterday
        user(NOW - H, None, "alice"), rec(NOW - H, USD)])
    svc = service(store_settings, [PER_USER])
    svc.ledger.add(svc.ledger.aggregate([user(NOW, USD, "bob", resource=True), user(NOW, USD, "carol")]))
    table = svc.snapshot().entities["per-user"]
    assert {e: st.spent_pusd for e, st in table.entities.items()} == {"alice": 2 * USD, "bob": 4 * USD, "carol": USD}
    assert (table.entities["bob"].pending_pusd, table.folded) == (USD, 0)
    assert svc.snapshot().statuses == {}  # a per-entity budget has no aggregate status


def test_cap_folds_later_entities_into_other_and_a_new_service_keeps_the_same(store, store_settings) -> None:
    """max_entities = 2: the two biggest spenders are tracked, the third is `other` (counted); a new service
    (a restart) tracks the same two even when the third has become the biggest spender."""
    ClickHouseSink(store).write([user(NOW - H, 5 * USD, "alice"), user(NOW - H, 3 * USD, "bob"),
                                 user(NOW - H, USD, "carol")])
    budget = {**PER_USER, "max_entities": 2}
    svc = service(store_settings, [budget])
    table = svc.snapshot().entities["per-user"]
    assert sorted(table.entities) == ["alice", "bob"]
    assert (table.other.spent_pusd, table.folded) == (USD, 1)
    registry = CollectorRegistry()
    registry.register(BudgetCollector(svc))
    text = generate_latest(registry).decode()
    assert 'llm_budget_entities_folded{budget="per-user"} 1.0' in text
    assert 'llm_budget_entity_spent_usd{budget="per-user",entity="other"} 1.0' in text
    assert 'entity="carol"' not in text

    ClickHouseSink(store).write([user(NOW - H, 50 * USD, "carol")])
    table = service(store_settings, [budget]).snapshot().entities["per-user"]
    assert sorted(table.entities) == ["alice", "bob"] and table.other.spent_pusd == 51 * USD


def test_a_budget_put_at_run_time_is_stored_and_loaded_by_a_new_service(store, store_settings) -> None:
    """PUT persists the definition, DELETE removes it; a config budget cannot be replaced."""
    ClickHouseSink(store).write([user(NOW - H, 2 * USD, "alice")])
    svc = service(store_settings, [{"name": "all", "limit_usd": 100}])
    table = {"limit_usd": "1.5", "period": "day", "scope": {"each": "user.id"}}
    assert svc.put_budget(parse_budget(table, "per-user"), table) is True
    assert svc.snapshot().entities["per-user"].entities["alice"].status == "exceeded"
    with pytest.raises(PermissionError):
        svc.put_budget(parse_budget(table, "all"), table)
    again = service(store_settings, [{"name": "all", "limit_usd": 100}])
    again.load_stored()
    assert again.budgets["per-user"].limit_pusd == 1_500_000_000_000 and again.budgets["per-user"].source == "api"
    assert again.delete_budget("per-user") is True and again.delete_budget("per-user") is False
    third = service(store_settings, [{"name": "all", "limit_usd": 100}])
    third.load_stored()
    assert sorted(third.budgets) == ["all"]


def test_pending_spend_of_a_budget_added_at_run_time_counts_once_flushed() -> None:
    """The ledger gains a key for a new budget; entries aggregated before (or with the old keys) get ""."""
    ledger = SpendLedger(("team",))
    old = ledger.aggregate([rec(NOW, USD, attributes={"team": "a", "user.id": "x"})])
    ledger.add(old)
    ledger.extend_keys(("team",), ("user.id",))
    ledger.add(old)  # aggregated with the old keys, applied after the change: re-shaped
    ledger.add(ledger.aggregate([rec(NOW, USD, attributes={"team": "a", "user.id": "x"})]))
    values = {dims[4]: v for (dims, _), v in ledger.snapshot().items()}
    assert values == {("a", ""): 2 * USD, ("a", "x"): USD}
    ledger.subtract(old)
    ledger.subtract(old)
    assert {dims[4] for (dims, _) in ledger.snapshot()} == {("a", "x")}


def test_threshold_events_one_per_highest_threshold_and_period(store, store_settings) -> None:
    ClickHouseSink(store).write([user(NOW - H, 9 * USD, "alice"), user(NOW - H, 4 * USD, "bob"),
                                 user(NOW - H, 12 * USD, "carol")])
    events = [e for e in budget_events(service(store_settings, [PER_USER]).snapshot()) if e.kind == "threshold"]
    assert sorted((e.payload["entity"], e.payload["threshold"]) for e in events) == [("alice", 0.8), ("carol", 1.0)]
    day = int(datetime(2025, 6, 18, tzinfo=UTC).timestamp())
    assert {e.key for e in events} == {f"threshold/per-user/alice/{day}/0.8", f"threshold/per-user/carol/{day}/1"}
    assert {e.payload["spent_usd"] for e in events} == {"9", "12"}


def test_entity_values_in_sql_are_quoted(store, store_settings) -> None:
    """A hostile attribute name or value is data, not SQL."""
    name = "u'); DROP TABLE llm_spans; --"
    ClickHouseSink(store).write([rec(NOW - H, USD, attributes={name: name})])
    svc = service(store_settings, [{**PER_USER, "scope": {"each": name}}])
    assert list(svc.snapshot().entities["per-user"].entities) == [name]
    assert store.query(f"SELECT count() FROM llm_spans WHERE attributes[{quote(name)}] != ''").result_rows[0][0] == 1


def test_list_is_paged_and_filtered(store, store_settings) -> None:
    """GET /v1/budgets pages plain budgets then entities (biggest first) and filters by name, status, entity."""
    from llm_cost_tracker.budgets import BudgetHook
    from llm_cost_tracker.httpserver import HttpServer
    from llm_cost_tracker.testing import http_json

    ClickHouseSink(store).write([user(NOW - H, (k + 1) * 4 * USD, f"user-{k}") for k in range(5)])
    hook = BudgetHook(service(store_settings, [PER_USER, {"name": "all", "limit_usd": 1000}]))
    http = HttpServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, "ok"))
    hook.serve(http, CollectorRegistry())
    http.start()
    try:
        base = f"http://127.0.0.1:{http.port}/v1/budgets"
        status, page = http_json(base + "?limit=3")
        assert status == 200 and (page["total"], page["next_offset"]) == (6, 3)
        assert [(b["name"], b.get("entity")) for b in page["budgets"]] == [
            ("all", None), ("per-user", "user-4"), ("per-user", "user-3")]
        status, rest = http_json(base + "?limit=3&offset=3")
        assert [b["entity"] for b in rest["budgets"]] == ["user-2", "user-1", "user-0"] and rest["next_offset"] is None
        status, over = http_json(base + "?name=per-user&status=exceeded")
        assert [b["entity"] for b in over["budgets"]] == ["user-4", "user-3", "user-2"]  # 20, 16, 12 USD of 10
        status, one = http_json(base + "/per-user?entity=user-1")
        assert [e["spent_usd"] for e in one["entities"]] == [8.0] and one["tracked"] == 5
        assert http_json(base + "?limit=0")[0] == 400 and http_json(base + "?bogus=1")[0] == 400
    finally:
        http.stop()
        hook.stop()


def test_an_entity_value_holding_a_key_is_named_by_its_hash_everywhere(store, store_settings) -> None:
    """With redaction off a key reaches llm_spans in clear; past the store it is only ever sha256:<hex>
    (the listing, the metrics, budget_entities, /v1/check's answer), and a check with the key finds it."""
    import hashlib

    from llm_cost_tracker.budgets import holds_secret
    from llm_cost_tracker.budgets._entities import EntityNames
    from llm_cost_tracker.testing import SECRETS

    key = SECRETS["openai_key"]
    ClickHouseSink(store).write([rec(NOW - H, 20 * USD, attributes={"api.key": key}),
                                 rec(NOW - H, USD, attributes={"api.key": "alice"})])
    svc = service(store_settings, [{**PER_USER, "scope": {"each": "api.key"}}])
    svc.names = EntityNames(holds_secret())
    svc.ledger.add(svc.ledger.aggregate([rec(NOW, USD, attributes={"api.key": key})]))
    table = svc.snapshot().entities["per-user"]
    hashed = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    assert {e: st.spent_pusd for e, st in table.entities.items()} == {hashed: 21 * USD, "alice": USD}
    registry = CollectorRegistry()
    registry.register(BudgetCollector(svc))
    assert key not in generate_latest(registry).decode()
    assert key not in str(store.query("SELECT * FROM budget_entities").result_rows)
    covering = svc.snapshot().covering("acme", "chat-api", "openai", "gpt-4o", {"api.key": key}, svc.names)
    assert [(st.entity, st.status) for st in covering] == [(hashed, "exceeded")]
