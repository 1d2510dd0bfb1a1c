"""The LiteLLM importer: exact conversion, tiers and bands, aliases, history kept on re-import."""

from __future__ import annotations

import json
from pathlib import Path

from llm_cost_tracker.pricing._litellm import convert, import_file
from llm_cost_tracker.pricing._model import parse_document
from llm_cost_tracker.pricing._validate import validate_file

SAMPLE = {
    "sample_spec": {"input_cost_per_token": 0.0},
    "gpt-x": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "cache_read_input_token_cost": 1.25e-06,
        "input_cost_per_token_batches": 1.25e-06,
        "input_cost_per_token_priority": 4.25e-06,
        "input_cost_per_token_above_200k_tokens": 5e-06,
        "deprecation_date": "2027-01-01",
    },
    "gpt-x-latest": {"alias_of": "gpt-x"},
    "gemini/gem-y": {"litellm_provider": "gemini", "input_cost_per_token": 2.0000000000000002e-07, "output_cost_per_token": 4e-07},
    "image-only": {"litellm_provider": "openai", "output_cost_per_image": 0.04},
    "vertex_ai/claude-z@20250101": {"litellm_provider": "vertex_ai-anthropic_models", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05},
}


def test_convert_maps_dimensions_tiers_and_bands() -> None:
    """LiteLLM's *_cost_* fields become rate cards per tier and context band, in USD per 1M tokens."""
    out = convert(SAMPLE, source="test", recorded="2026-01-01", version="litellm-test")
    entry = out["openai"]["gpt-x"]
    assert entry["aliases"] == ["gpt-x-latest"] and entry["deprecation_date"] == "2027-01-01"
    cards = entry["versions"][0]["rates"]
    assert {"tier": "standard", "input": "2.5", "output": "10", "cache_read": "1.25"} in cards
    assert {"tier": "standard", "above_input_tokens": 200000, "input": "5"} in cards
    assert {"tier": "batch", "input": "1.25"} in cards and {"tier": "priority", "input": "4.25"} in cards
    # a model priced per image (not per token) is imported with its per-unit price, not left out
    assert out["openai"]["image-only"]["versions"][0]["rates"] == [{"tier": "standard", "per_output_image": "0.04"}]
    assert "claude-z@20250101" in out["vertex_ai"]


def test_float_artefacts_are_rounded_to_femto_and_noted() -> None:
    """A float artefact such as 2.0000000000000002e-07 becomes the exact 0.2 USD/1M, with a note."""
    version = convert(SAMPLE, source="t", recorded="2026-01-01", version="v")["gemini"]["gem-y"]["versions"][0]
    assert version["rates"][0]["input"] == "0.2"
    assert "rounded to whole femto-USD" in version["note"]


def test_reimport_keeps_history_and_retired_models(tmp_path: Path) -> None:
    """Re-importing closes a changed price, adds a dated version, and keeps models the map dropped."""
    first = tmp_path / "map1.json"
    first.write_text(json.dumps(SAMPLE))
    import_file(first, tmp_path, recorded="2026-01-01", litellm_version="1.0")
    changed = {k: v for k, v in SAMPLE.items() if k != "gemini/gem-y"}
    changed["gpt-x"] = {**SAMPLE["gpt-x"], "input_cost_per_token": 2e-06}  # type: ignore[dict-item]
    second = tmp_path / "map2.json"
    second.write_text(json.dumps(changed))
    import_file(second, tmp_path, recorded="2026-03-01", litellm_version="1.1")
    openai = json.loads((tmp_path / "openai.json").read_text())["models"]["gpt-x"]["versions"]
    assert [(v["version"], v["effective_from"], v["effective_to"]) for v in openai] == [
        ("litellm-1.0", None, "2026-03-01"),
        ("litellm-1.1", "2026-03-01", None),
    ]
    assert "gem-y" in json.loads((tmp_path / "gemini.json").read_text())["models"]
    errors: list[str] = []
    parse_document(json.loads((tmp_path / "openai.json").read_text()), "openai.json", errors)
    assert not errors
    assert validate_file(tmp_path / "openai.json")[0] == []


def test_bundled_data_files_are_valid() -> None:
    """Every data file shipped in the package passes validation."""
    folder = Path(__file__).parents[2] / "src" / "llm_cost_tracker" / "pricing" / "data"
    files = sorted(folder.glob("*.json")) + sorted(folder.glob("*.yaml"))
    assert files
    for path in files:
        errors, _ = validate_file(path)
        assert not errors, (path.name, errors[:3])


def test_validate_reports_schema_errors(tmp_path: Path) -> None:
    """validate lists every problem of a broken data file."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1, "provider": "x", "models": {
        "m": {"versions": [{"version": "v", "source": "s", "recorded": "2026-01-01", "effective_from": "nope",
                            "rates": [{"tier": "turbo", "input": "1.0000000000000001"}]}]}}}))
    errors, _ = validate_file(bad)
    text = "\n".join(errors)
    assert "effective_from" in text and "tier must be one of" in text and "femto" in text
