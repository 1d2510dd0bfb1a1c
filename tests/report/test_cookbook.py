"""Every query in docs/queries.md runs on chDB with known spans and gives the known answer."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

COOKBOOK = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
_BLOCK = re.compile(r"```sql\n(.*?)```", re.S)
_NAME = re.compile(r"^-- name: ([\w.]+)\n")


def cookbook() -> dict[str, str]:
    """name -> SQL of every ```sql block of the cookbook (each must start with ``-- name:``)."""
    out = {}
    for block in _BLOCK.findall(COOKBOOK.read_text()):
        match = _NAME.match(block)
        assert match, f"cookbook block without '-- name:': {block[:60]!r}"
        assert match.group(1) not in out, f"duplicate cookbook name {match.group(1)}"
        out[match.group(1)] = block
    return out


QUERIES = cookbook()
PARAMETERS = {"cost_of_trace": {"trace_id": "t1"}}


def D(text: str) -> Decimal:
    return Decimal(text)


def run(store: Any, name: str) -> list[tuple]:
    return store.query(QUERIES[name], parameters=PARAMETERS.get(name.removesuffix(".raw"))).result_rows


def check_spend_per_model_per_day(rows: list[tuple], now: dt.datetime) -> None:
    month = now.replace(day=1).date()
    last_day = month - dt.timedelta(days=1)
    this_day = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
                + (now - now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)) / 2).date()
    assert rows == [
        (last_day, "gpt-4o", 2, D("3")),
        (this_day, "gpt-4o", 3, D("0.53")),
        (this_day, "claude-sonnet-4", 1, D("0.04")),
        (this_day, "mystery-1", 2, D("0")),
    ]


EXPECTED: dict[str, Any] = {
    "spend_per_model_per_day": check_spend_per_model_per_day,
    "spend_by_model_this_month": [
        ("gpt-4o", 3, D("0.53"), 53000, 10600),
        ("claude-sonnet-4", 1, D("0.04"), 3000, 100),
        ("mystery-1", 2, D("0"), 1000, 100),
    ],
    "top_services_this_month": [("batch", 2, D("0.5"), 1), ("search", 1, D("0.04"), 1), ("chat-api", 3, D("0.03"), 1)],
    "top_tenants_this_month": lambda rows, now: (
        [r[:3] for r in rows] == [("globex", 2, D("0.5")), ("acme", 4, D("0.07"))]
        and abs(float(rows[0][3]) - 87.719298) < 1e-4
    ),
    "cost_of_trace": lambda rows, now: rows[0][:6] == ("t1", 2, D("0.03"), 0, 3000, 600) and rows[0][6] == ["gpt-4o"],
    "top_traces_this_month": [("t3", "globex", "batch", 2, D("0.5")), ("t2", "acme", "search", 1, D("0.04")),
                              ("t1", "acme", "chat-api", 2, D("0.03")), ("t4", "acme", "chat-api", 1, None)],
    "cost_per_conversation": lambda rows, now: [r[:5] for r in rows] == [("c2", "acme", 1, 1, D("0.04")),
                                                                          ("c1", "acme", 2, 1, D("0.03"))],
    "cache_savings_this_month": [
        ("claude-sonnet-4", 1000, D("0.04"), D("0.0027"), D("6.32")),
        ("gpt-4o", 400, D("0.53"), D("0.0005"), D("0.09")),
    ],
    "unpriced_tokens_this_month": [("openai", "mystery-1", 2, 1000, 100)],
    "latency_and_unit_cost_by_model": lambda rows, now: (
        [(r[0], r[1], r[4]) for r in rows] == [("claude-sonnet-4", 1, D("0.4")), ("gpt-4o", 3, D("0.05")),
                                               ("mystery-1", 2, None)]
        and rows[0][2] == rows[0][3] == 2000 and rows[1][2] == 3000 and 3000 < rows[1][3] <= 10000
        and 400 <= rows[2][2] <= 500
    ),
    "spend_vs_budget_this_month": lambda rows, now: (
        [r[:5] + r[6:] for r in rows] == [("globex", D("0.4"), D("0.5"), D("-0.1"), 125.0, "exceeded"),
                                          ("acme", D("0.1"), D("0.07"), D("0.03"), 70.0, "ok")]
        and all(r[5] >= float(r[2]) for r in rows)
    ),
}


def test_every_cookbook_query_has_a_check() -> None:
    """Each named query in docs/queries.md is checked here, and each check names a query of the cookbook."""
    names = {n for n in QUERIES if not n.endswith(".raw")}
    assert names == set(EXPECTED)
    assert {n.removesuffix(".raw") for n in QUERIES} == names


@pytest.mark.parametrize("name", sorted(n for n in QUERIES if not n.endswith(".raw")))
def test_cookbook_query(loaded, name: str) -> None:
    """The cookbook query gives the known answer over the known spans, and its raw twin agrees."""
    store, now = loaded
    rows = run(store, name)
    expected = EXPECTED[name]
    if callable(expected):
        assert expected(rows, now) is not False, rows
    else:
        assert rows == expected
    if name + ".raw" in QUERIES:
        assert run(store, name + ".raw") == rows
