"""Caches keyed by client-sent names stay bounded in characters, not only in entries.

65,536 distinct names of 512 astral characters (provider, model with a date suffix, tenant) filled the
catalog's resolution cache, family memo and unresolved set to about 1.1 GiB of RSS before the
character budget; with it, about 60 MiB (benchmarks/fuzz.py, docs/hardening.md).
"""

from __future__ import annotations

import pytest

from llm_cost_tracker.pricing import PriceCatalog, _catalog

ASTRAL = "\U0001F600"


@pytest.fixture(scope="module")
def loaded() -> PriceCatalog:
    return PriceCatalog.load()


def _fresh(loaded: PriceCatalog) -> PriceCatalog:
    return PriceCatalog(loaded.entries.values(), loaded.overrides)


def _chars(keys: object) -> int:
    return sum(len(part) for key in keys for part in key)  # type: ignore[attr-defined]


def test_long_names_are_bounded_in_characters(loaded: PriceCatalog, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = 60_000
    monkeypatch.setattr(_catalog, "_CACHE_CHARS", budget)
    catalog = _fresh(loaded)
    name_chars = _catalog.MAX_NAME_CHARS
    for i in range(300):
        model = f"m{i}-".ljust(name_chars - 11, ASTRAL) + "-2024-08-06"  # a dated name: the family memo too
        assert catalog.resolve(f"p{i}".ljust(name_chars, ASTRAL), model, f"t{i}".ljust(name_chars, ASTRAL)) is None
        assert _chars(catalog._cache) <= budget
        assert _chars(catalog._uniform) <= budget
        assert _chars(catalog._unresolved) <= budget
    assert catalog._unresolved  # it still remembers (and logs) unresolved names up to the budget
    assert catalog._cache_chars == _chars(catalog._cache)
    assert catalog._unresolved_chars == _chars(catalog._unresolved)


def test_short_names_still_reach_the_entry_limit(loaded: PriceCatalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_catalog, "_CACHE_LIMIT", 500)
    catalog = _fresh(loaded)
    for i in range(2_000):
        catalog.resolve("openai", f"no-such-model-{i}")
        assert len(catalog._cache) <= 500
    assert len(catalog._unresolved) == 500  # realistic names: the character budget is not what binds


def test_resolution_is_unchanged_after_the_cache_is_cleared(loaded: PriceCatalog,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_catalog, "_CACHE_CHARS", 5_000)
    catalog = _fresh(loaded)
    first = catalog.resolve("openai", "gpt-4o-mini")
    assert first is not None
    for i in range(50):
        catalog.resolve("openai", f"junk-{i}".ljust(400, "x"))
    assert ("openai", "gpt-4o-mini", "") not in catalog._cache  # cleared by the junk
    again = catalog.resolve("openai", "gpt-4o-mini")
    assert again is not None and again.entry.key == first.entry.key
