"""Token tables, rate limits and label folding, without a server."""

import pytest

from llm_cost_tracker.access.cardinality import OTHER, LabelFolder
from llm_cost_tracker.access.guard import ANONYMOUS, AccessGuard
from llm_cost_tracker.access.ratelimit import RateLimiter
from llm_cost_tracker.access.tokens import ReloadingTokens, TenantPolicy, TokenTable, sha256_hex
from llm_cost_tracker.config import ConfigError

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
    assert limiter.admit(policy, 1, 30_000) > 0  # the byte bucket is the one that is short now
    assert limiter.admit(TenantPolicy("free"), 10**9, 10**12) == 0.0


def test_labels_fold_past_the_limit() -> None:
    """Past its limit a tenant's new label values fold into 'other'; known values and other tenants are untouched."""
    folder = LabelFolder(default_limit=2)
    folder.set_limit("big", "model", 3)
    assert [folder.fold("t", "model", m) for m in ("a", "b", "c", "a")] == ["a", "b", OTHER, "a"]
    assert [folder.fold("big", "model", m) for m in ("a", "b", "c", "d")] == ["a", "b", "c", OTHER]
    assert folder.fold("u", "model", "c") == "c"
    assert folder.folded == 2
