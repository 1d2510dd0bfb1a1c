"""Token tables, rate limits and label folding, without a server."""

import pytest

from llm_cost_tracker import metrics as metrics_module
from llm_cost_tracker.access.cardinality import OTHER, LabelFolder
from llm_cost_tracker.access.guard import ANONYMOUS, AccessGuard
from llm_cost_tracker.access.ratelimit import OverBurst, RateLimiter
from llm_cost_tracker.access.tokens import ReloadingTokens, TenantPolicy, TokenTable, sha256_hex
from llm_cost_tracker.config import ConfigError
from llm_cost_tracker.metrics import SpendCollector
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord, TokenUsage

AUTH = {
    "admin_tokens": ["root"],
    "tenants": [
        {"name": "acme", "tokens": ["acme-1", "acme-2"], "spans_per_second": 100},
        {"name": "globex", "token_sha256": [sha256_hex("globex-1")]},
    ],
}


def test_tokens_map_to_tenants_and_admins() -> None:
    """Each token, plain or hashed, names its tenant; admin tokens name no tenant; unknown tokens nothing."""
    table = TokenTable.parse(AUTH)
    assert table.lookup("acme-1").tenant_name == "acme" and table.lookup("acme-2").tenant_name == "acme"
    assert table.lookup("globex-1").tenant_name == "globex"
    assert table.lookup("root").admin and table.lookup("root").tenant is None
    assert table.lookup("nope") is None


def test_every_problem_is_reported() -> None:
    """Duplicate tokens, tenants without tokens or names, and unknown keys are all listed together."""
    bad = {"tenants": [{"name": "a", "tokens": ["x"]}, {"name": "b", "tokens": ["x"]}, {"name": "c"},
                       {"tokens": ["y"]}, {"name": "d", "tokens": ["z"], "colour": "red"}], "extra": 1}
    with pytest.raises(ConfigError) as info:
        TokenTable.parse(bad)
    text = str(info.value)
    for needle in ("already used", "has no tokens", "needs a name", "colour", "extra"):
        assert needle in text


def test_guard_reads_bearer_tokens() -> None:
    """The guard admits anyone without a table, and otherwise only known bearer tokens."""
    assert AccessGuard(lambda: TokenTable()).authenticate(()) is ANONYMOUS
    guard = AccessGuard(lambda: TokenTable.parse(AUTH))
    assert guard.authenticate((("authorization", "Bearer acme-1"),)).tenant_name == "acme"
    assert guard.authenticate((("authorization", "Basic acme-1"),)) is None
    assert guard.authenticate(()) is None


def test_rotation_swaps_the_table() -> None:
    """Reloading picks up a new token and drops a removed one; a broken reload keeps the old table."""
    auth = {"tenants": [{"name": "acme", "tokens": ["old"]}]}
    holder = ReloadingTokens(lambda: TokenTable.parse(auth))
    auth = {"tenants": [{"name": "acme", "tokens": ["new"]}]}
    holder.reload()
    assert holder.current.lookup("new") is not None and holder.current.lookup("old") is None
    auth = {"tenants": [{"name": "acme"}]}
    with pytest.raises(ConfigError):
        holder.reload()
    assert holder.current.lookup("new") is not None


def test_rate_limit_buckets() -> None:
    """A tenant may burst to rate x burst, then waits exactly as long as the bucket needs to refill."""
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    policy = TenantPolicy("acme", spans_per_second=100, bytes_per_second=10_000, burst_seconds=2)
    assert limiter.admit(policy, 150, 1000) == 0.0
    assert limiter.admit(policy, 100, 1000) == pytest.approx(0.5)  # 50 left, needs 100: 50 spans at 100/s
    now[0] = 0.5
    assert limiter.admit(policy, 100, 1000) == 0.0
    assert limiter.admit(policy, 1, 19_500) > 0  # the byte bucket is the one that is short now (19,000 left)
    assert limiter.admit(TenantPolicy("free"), 10**9, 10**12) == 0.0


def test_a_request_over_the_burst_is_never_admitted() -> None:
    """A 20,000-span request through a 2,000-span burst is refused for good, even with a full bucket, and
    takes nothing; a burst's worth then passes once, and the next span waits for the refill."""
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    policy = TenantPolicy("acme", spans_per_second=1000, burst_seconds=2)
    with pytest.raises(OverBurst, match="20000 spans is over the burst of 2000 spans of tenant 'acme'"):
        limiter.admit(policy, 20_000, 0)
    with pytest.raises(OverBurst):
        limiter.admit(TenantPolicy("acme", bytes_per_second=1000, burst_seconds=2), None, 2001)
    assert limiter.admit(policy, 2000, 0) == 0.0
    assert limiter.admit(policy, 1, 0) == pytest.approx(0.001)
    assert limiter.admit(policy, None, 10**9) == 0.0  # no byte rate: bytes are not limited
    assert limiter.admit(policy, 1, 0, charge=False) == pytest.approx(0.001)  # looking takes nothing either


def test_labels_fold_past_the_limit() -> None:
    """Past its limit a tenant's new label values fold into 'other'; known values and other tenants are untouched."""
    folder = LabelFolder(default_limit=2)
    folder.set_limit("big", "model", 3)
    assert [folder.fold("t", "model", m) for m in ("a", "b", "c", "a")] == ["a", "b", OTHER, "a"]
    assert [folder.fold("big", "model", m) for m in ("a", "b", "c", "d")] == ["a", "b", "c", OTHER]
    assert folder.fold("u", "model", "c") == "c"
    assert folder.folded == 2



def _spend_record(tenant: str, service: str, provider: str, model: str) -> SpanRecord:
    return span_record(service_name=service, tenant=tenant, provider=provider, request_model=model,
                       usage=TokenUsage(1, 1), cost_pusd=1)


def test_every_span_label_is_folded_and_the_series_are_bounded(monkeypatch) -> None:
    """Providers fold like models and services (2,000 providers are not 2,000 series); over every tenant a
    label keeps at most global_limit values; values over 256 characters never become labels; past
    MAX_SERIES label sets, new ones are counted under (other, other, other)."""
    spend = SpendCollector(LabelFolder(default_limit=5, global_limit=8))
    spend.observe([_spend_record("t", "svc", f"provider-{i}", "m") for i in range(2000)])
    providers = {s.labels["provider"] for s in next(iter(spend.collect())).samples}
    assert providers == {f"provider-{i}" for i in range(5)} | {OTHER}
    spend.observe([_spend_record(f"tenant-{i}", "svc", "p", f"model-{i}") for i in range(20)])
    models = {s.labels["model"] for s in next(iter(spend.collect())).samples}
    assert len(models - {OTHER, "m"}) == 7  # 8 over every tenant, "m" included
    folder = LabelFolder()
    assert folder.fold("t", "model", "x" * 257) == OTHER and folder.fold("t", "model", "x" * 256) == "x" * 256
    monkeypatch.setattr(metrics_module, "MAX_SERIES", 3)
    spend = SpendCollector(LabelFolder())
    spend.observe([_spend_record("t", f"svc-{i}", "p", "m") for i in range(10)])
    services = sorted(s.labels["service"] for s in next(iter(spend.collect())).samples)
    assert services == [OTHER, "svc-0", "svc-1", "svc-2"]


def test_a_scrape_restricted_to_other_names_collects_neither_spend_nor_budgets() -> None:
    """The spend and budget collectors describe their families, so ``/metrics?name[]=...`` (a restricted registry)
    for another family neither builds theirs nor reads the budgets' spend from the store; asked for by name, the
    spend family comes with its samples."""
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    from llm_cost_tracker.budgets import BudgetCollector

    class Budgets:
        snapshots = 0
        refresh_errors = 0

        def snapshot(self) -> None:
            self.snapshots += 1

    registry = CollectorRegistry()
    spend = SpendCollector(LabelFolder())
    spend.observe([span_record(service_name="chat", provider="openai", response_model="gpt-4o",
                               usage=TokenUsage(10, 2), cost_pusd=1_500_000_000_000, pricing_status="priced")])
    budgets = Budgets()
    registry.register(spend)
    registry.register(BudgetCollector(budgets))  # type: ignore[arg-type]
    Counter("llm_pipeline_rows_written", "rows", registry=registry).inc(3)

    text = generate_latest(registry.restricted_registry(["llm_pipeline_rows_written_total"])).decode()
    assert "llm_pipeline_rows_written_total 3.0" in text
    assert "llm_cost_usd" not in text and "llm_budget" not in text and budgets.snapshots == 0
    text = generate_latest(registry.restricted_registry(["llm_cost_usd_total"])).decode()
    assert 'llm_cost_usd_total{model="gpt-4o",provider="openai",service="chat"} 1.5' in text
    assert "llm_tokens" not in text and budgets.snapshots == 0
    assert "llm_budget_limit_usd" in generate_latest(registry).decode() and budgets.snapshots == 1
