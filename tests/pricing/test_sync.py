"""Catalog sync: dated layers in the data dir over the bundled catalog, refusals, diff, service syncer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from llm_cost_tracker.cli import main
from llm_cost_tracker.pricing import PriceCatalog, ReloadingCatalog
from llm_cost_tracker.pricing._service import CatalogSyncer, export_catalog_metrics
from llm_cost_tracker.pricing._settings import PricingSettings
from llm_cost_tracker.pricing._sync import layer_files, sync
from llm_cost_tracker.types import TokenUsage

DATA = Path(__file__).parent / "testdata"
BUNDLED_OPENAI = Path(__file__).parents[2] / "src" / "llm_cost_tracker" / "pricing" / "data" / "openai.json"
SYNCED = datetime(2026, 12, 1, tzinfo=UTC)
BEFORE_NS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) * 10**9
AFTER_NS = int(datetime(2026, 12, 2, tzinfo=UTC).timestamp()) * 10**9
MILLION = TokenUsage(1_000_000, 1_000_000)


def price_list(tmp_path: Path, name: str = "list.json", **rates: str) -> Path:
    """Our data-file format with gpt-4o-mini's standard card changed by ``rates`` (bundled: $0.15 in, $0.60 out)."""
    doc = json.loads(BUNDLED_OPENAI.read_text())
    entry = doc["models"]["gpt-4o-mini"]
    entry["versions"][0]["rates"][0].update(rates)
    path = tmp_path / name
    path.write_text(json.dumps({"schema_version": 1, "provider": "openai", "models": {"gpt-4o-mini": entry}}))
    return path


def cost(catalog: PriceCatalog, at_ns: int) -> int:
    q = catalog.quote("openai", "gpt-4o-mini", at_ns, MILLION)
    assert q is not None
    return q.cost_pusd


def test_a_synced_price_applies_from_the_sync_and_earlier_spans_keep_theirs(tmp_path: Path,
                                                                             catalog: PriceCatalog) -> None:
    """After a sync, spans from then on are priced at the new price; a span before it at the old one."""
    result = sync(str(price_list(tmp_path, input="0.3")), tmp_path / "data", catalog.entries, now=SYNCED)
    assert not result.refused and result.layer is not None and [c.kind for c in result.changes] == ["changed"]
    layered = PriceCatalog.load(data_dir=tmp_path / "data")
    assert cost(layered, AFTER_NS) == 900_000_000_000  # $0.30 + $0.60
    assert cost(layered, BEFORE_NS) == 750_000_000_000 == cost(catalog, AFTER_NS)  # $0.15 + $0.60
    assert layered.as_of_ns == int(SYNCED.timestamp()) * 10**9


def test_a_sync_dropping_a_price_to_zero_is_refused(tmp_path: Path, catalog: PriceCatalog) -> None:
    """output 0.60 -> 0: refused, nothing recorded, until --accept-changes."""
    source = str(price_list(tmp_path, output="0"))
    result = sync(source, tmp_path / "data", catalog.entries, now=SYNCED)
    assert result.refused and result.layer is None and layer_files(tmp_path / "data") == []
    assert any("output 0.6 -> 0 (refused: drops to 0)" in line for line in result.changes[0].details)
    accepted = sync(source, tmp_path / "data", catalog.entries, now=SYNCED, accept_changes=True)
    assert not accepted.refused and accepted.layer is not None


def test_a_big_move_is_refused(tmp_path: Path, catalog: PriceCatalog) -> None:
    """An input price 10x the one in force is refused at the default factor 5."""
    result = sync(str(price_list(tmp_path, input="1.5")), tmp_path / "data", catalog.entries, now=SYNCED)
    assert result.refused and "moves by more than 5x" in "".join(result.changes[0].details)


def test_cli_sync_diff_and_cost_with_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """pricing diff records nothing; pricing sync records; pricing cost --data-dir sees the synced price."""
    data = str(tmp_path / "data")
    source = str(price_list(tmp_path, input="0.3"))
    assert main(["pricing", "diff", "--from", source, "--data-dir", data]) == 0
    assert "standard: input 0.15 -> 0.3" in capsys.readouterr().out and layer_files(data) == []
    assert main(["pricing", "sync", "--from", source, "--data-dir", data]) == 0
    assert len(layer_files(data)) == 1
    capsys.readouterr()
    args = ["pricing", "cost", "gpt-4o-mini", "--input", "1000000", "--output", "0", "--format", "json"]
    assert main([*args, "--data-dir", data]) == 0
    assert json.loads(capsys.readouterr().out)["cost_usd"] == "0.30"
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["cost_usd"] == "0.15"
    zero = str(price_list(tmp_path, "zero.json", output="0"))
    assert main(["pricing", "sync", "--from", zero, "--data-dir", data]) == 2
    assert "refused" in capsys.readouterr().err and len(layer_files(data)) == 1


def test_litellm_format_sync_of_the_bundled_snapshot_changes_nothing(tmp_path: Path, catalog: PriceCatalog) -> None:
    """LiteLLM's own map (the snapshot the catalog was imported from) is read and gives no change."""
    result = sync(str(DATA / "litellm-1.110.2-model-prices.json.gz"), tmp_path, catalog.entries, dry_run=True)
    assert result.entries > 4000 and result.changes == []


def test_service_syncer_records_reloads_and_ages(tmp_path: Path) -> None:
    """The service's syncer fetches a file:// URL, records the layer and swaps the catalog; the age gauge drops."""
    holder = ReloadingCatalog(data_dir=tmp_path / "data")
    registry = CollectorRegistry()
    clock = [datetime(2027, 6, 1, tzinfo=UTC).timestamp()]
    counter = export_catalog_metrics(registry, holder, clock=lambda: clock[0])
    age_before = registry.get_sample_value("llm_price_catalog_age_seconds")
    assert age_before is not None and age_before > 150 * 86400  # the bundled prices were recorded in 2026-11
    settings = PricingSettings(sync_url=price_list(tmp_path, input="0.3").as_uri())
    assert CatalogSyncer(holder, settings, counter).run_once() == "changed"
    assert cost(holder.current, 2**62) == 900_000_000_000
    assert registry.get_sample_value("llm_price_syncs_total", {"result": "changed"}) == 1
    age_after = registry.get_sample_value("llm_price_catalog_age_seconds")
    assert age_after is not None and age_after < age_before
    zero = PricingSettings(sync_url=price_list(tmp_path, "zero.json", output="0").as_uri())
    assert CatalogSyncer(holder, zero, counter).run_once() == "refused"
    assert cost(holder.current, 2**62) == 900_000_000_000
