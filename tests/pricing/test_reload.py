"""ReloadingCatalog: atomic swaps on reload, the old catalog kept on a bad file, no failed reads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from llm_cost_tracker.pricing import ReloadingCatalog
from llm_cost_tracker.types import TokenUsage

AT = 1_780_000_000_000_000_000
PRICE = '[models."acme/m"]\ninput = "{}"\noutput = "0"\n'


def test_reload_swaps_in_new_prices(tmp_path: Path) -> None:
    """After the price file changes, reload() puts the new price in force."""
    path = tmp_path / "prices.toml"
    path.write_text(PRICE.format("1"))
    holder = ReloadingCatalog(path)
    first = holder.current
    path.write_text(PRICE.format("2"))
    assert holder.reload()
    q = holder.current.quote("acme", "m", AT, TokenUsage(1_000_000, 0))
    assert q is not None and q.cost_pusd == 2 * 10**12
    assert first.quote("acme", "m", AT, TokenUsage(1_000_000, 0)).cost_pusd == 10**12  # type: ignore[union-attr]


def test_bad_file_keeps_the_old_catalog(tmp_path: Path) -> None:
    """A price file that no longer parses leaves the previous catalog in force."""
    path = tmp_path / "prices.toml"
    path.write_text(PRICE.format("1"))
    holder = ReloadingCatalog(path)
    before = holder.current
    path.write_text("[models.\n")
    assert not holder.reload()
    assert holder.current is before and holder.failures == 1


def test_polling_picks_up_file_changes(tmp_path: Path) -> None:
    """With polling on, editing the price file reloads it without a signal."""
    path = tmp_path / "prices.toml"
    path.write_text(PRICE.format("1"))
    holder = ReloadingCatalog(path)
    holder.start_polling(0.05)
    try:
        time.sleep(0.02)
        path.write_text(PRICE.format("3") + "\n")
        deadline = time.monotonic() + 5
        while holder.reloads == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        q = holder.current.quote("acme", "m", AT, TokenUsage(1_000_000, 0))
        assert q is not None and q.cost_pusd == 3 * 10**12
    finally:
        holder.stop()


def test_readers_never_see_a_missing_catalog_during_reloads(tmp_path: Path) -> None:
    """Spans priced while reloads run in another thread are all priced."""
    path = tmp_path / "prices.toml"
    path.write_text(PRICE.format("1"))
    holder = ReloadingCatalog(path)
    stop = threading.Event()
    misses = []

    def reader() -> None:
        while not stop.is_set():
            if holder.current.quote("acme", "m", AT, TokenUsage(10, 0)) is None:
                misses.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(3):
        path.write_text(PRICE.format(str(i + 1)))
        holder.reload()
    stop.set()
    thread.join()
    assert not misses
