"""``llm-cost-tracker pricing``: show, cost, list, import and validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_cost_tracker.cli import main

DATA = Path(__file__).parent / "testdata"


def test_cost_json(capsys: pytest.CaptureFixture[str]) -> None:
    """pricing cost prints the matched entry, breakdown and exact total as JSON."""
    rc = main(["pricing", "cost", "gpt-4o", "--provider", "openai", "--input", "1000", "--output", "500",
               "--cache-read", "200", "--at", "2025-01-01", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert data["pricing_model"] == "openai/gpt-4o"
    assert data["cost_usd"] == "0.00725"
    assert data["breakdown_usd"] == {"input": "0.002", "output": "0.005", "cache_read": "0.00025"}


def test_cost_text_and_price_in_force(capsys: pytest.CaptureFixture[str]) -> None:
    """pricing cost --at applies the price in force at that date."""
    assert main(["pricing", "cost", "gpt-4o", "--input", "1000000", "--output", "0", "--at", "2024-09-01"]) == 0
    out = capsys.readouterr().out
    assert "version 2024-05-13" in out and "total           $5.00" in out


def test_cost_unknown_model_fails(capsys: pytest.CaptureFixture[str]) -> None:
    """pricing cost exits 1 and says unpriced for an unknown model."""
    assert main(["pricing", "cost", "no-such-model", "--input", "1", "--output", "1"]) == 1
    assert "unpriced" in capsys.readouterr().err


def test_show(capsys: pytest.CaptureFixture[str]) -> None:
    """pricing show names the entry, how it matched, and its versions with sources."""
    assert main(["pricing", "show", "us.anthropic.claude-3-5-sonnet-20241022-v2:0", "--provider", "aws.bedrock"]) == 0
    out = capsys.readouterr().out
    assert "bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0" in out and "LiteLLM" in out
    assert main(["pricing", "show", "gemini-1.5-pro", "--provider", "gcp.gemini", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in data["versions"]] == ["2024-05-14", "2024-10-01"]


def test_list_provider(capsys: pytest.CaptureFixture[str]) -> None:
    """pricing list --provider lists only that provider's entries."""
    assert main(["pricing", "list", "--provider", "anthropic", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["entry"].startswith("anthropic/") for r in rows)


def test_validate_ok_and_bad(capsys: pytest.CaptureFixture[str]) -> None:
    """pricing validate exits 0 for a good price file and 1, listing errors, for a bad one."""
    assert main(["pricing", "validate", str(DATA / "prices.toml")]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["pricing", "validate", str(DATA / "bad_prices.toml")]) == 1
    assert capsys.readouterr().err.count("error:") >= 3


def test_import_into_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """pricing import converts a LiteLLM map into per-provider data files."""
    source = tmp_path / "map.json"
    source.write_text(json.dumps({"m1": {"litellm_provider": "openai", "input_cost_per_token": 1e-06,
                                         "output_cost_per_token": 2e-06}}))
    out = tmp_path / "data"
    assert main(["pricing", "import", str(source), "--out", str(out), "--recorded", "2026-01-01"]) == 0
    assert "openai" in capsys.readouterr().out
    assert main(["pricing", "validate", str(out / "openai.json")]) == 0


def test_cost_with_price_file_and_tenant(capsys: pytest.CaptureFixture[str]) -> None:
    """pricing cost honours --prices and --tenant."""
    args = ["pricing", "cost", "gpt-4o", "--provider", "openai", "--input", "1000000", "--output", "0",
            "--prices", str(DATA / "prices.toml"), "--tenant", "acme", "--format", "json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["cost_usd"] == "2.00"
