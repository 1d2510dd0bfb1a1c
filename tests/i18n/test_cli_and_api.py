"""Localized output of `report`, `pricing show` and the budget API; JSON stays English."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest

from llm_cost_tracker.cli import main

ROWS = [["gpt-4o", 1234, Decimal("1234.56"), Decimal("0"), 0, 10, 20, 0, 0, 0]]
COLUMNS = ["model", "requests", "cost_usd", "cache_savings_usd", "unpriced_requests", "input_tokens",
           "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"]


@pytest.fixture
def fake_store(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import llm_cost_tracker.storage.client as client

    class Client:
        def query(self, sql, parameters=None):
            return SimpleNamespace(column_names=COLUMNS, result_rows=ROWS)

        def close(self) -> None:
            pass

    monkeypatch.setattr(client, "connect", lambda settings, **_options: Client())
    for name in ("LCT_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LCT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_report_table_in_german(fake_store, capsys) -> None:
    """`report --lang de` translates headers and formats numbers and USD the German way."""
    assert main(["report", "--lang", "de"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["Modell", "Anfragen", "Kosten"]
    assert "1.234,56\xa0$" in lines[2] and "1.234" in lines[2].split()[1]
    assert lines[-1] == "(1 Zeile)"


def test_report_precedence_and_json(fake_store, capsys, monkeypatch) -> None:
    """--lang beats LCT_LANG beats LANG; JSON output stays English whatever the language."""
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    assert main(["report"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "モデル"
    monkeypatch.setenv("LCT_LANG", "fr")
    assert main(["report"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "modèle"
    assert main(["report", "--lang", "es"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "modelo"
    assert main(["report", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["cost_usd"] == "1234.56"


def test_report_english_unchanged_and_unknown_language_noted(fake_store, capsys) -> None:
    """Without a language the table is the original English one; an unknown --lang says so and uses English."""
    assert main(["report"]) == 0
    english = capsys.readouterr()
    assert english.out.splitlines()[0].split()[:3] == ["model", "requests", "cost_usd"]
    assert main(["report", "--lang", "pt"]) == 0
    fallback = capsys.readouterr()
    assert fallback.out == english.out
    assert "no translation for language 'pt'" in fallback.err and "using English" in fallback.err


def test_pricing_show_localized(capsys, monkeypatch) -> None:
    """`pricing show --lang de` prints German labels and German decimals; --format json is unchanged."""
    monkeypatch.delenv("LCT_LANG", raising=False)
    assert main(["pricing", "show", "gpt-4o", "--provider", "openai", "--lang", "de"]) == 0
    out = capsys.readouterr().out
    assert "zugeordnet über" in out and "USD pro 1 Mio. Tokens" in out and "Eingabe" in out
    assert main(["pricing", "show", "gpt-4o", "--provider", "openai", "--format", "json", "--lang", "de"]) == 0
    assert "entry" in json.loads(capsys.readouterr().out)


def _api(lang: str = ""):
    from llm_cost_tracker.budgets.api import BudgetsApi
    from llm_cost_tracker.budgets.service import StoreUnavailable

    class Service:
        budgets: dict = {}

        def statuses(self):
            raise StoreUnavailable("OSError: disk gone")

        def snapshot(self):
            raise StoreUnavailable("OSError: disk gone")

    return BudgetsApi(Service(), lang=lang)  # type: ignore[arg-type]


def _request(path: str, accept: str = "", body: bytes = b""):
    from llm_cost_tracker.access.guard import ANONYMOUS

    headers = {"accept-language": accept} if accept else {}
    return SimpleNamespace(path=path, query="", headers=headers, body=body), ANONYMOUS


def test_budget_api_follows_accept_language(monkeypatch) -> None:
    """Budget API errors follow Accept-Language, else the service language, else English; keys stay English."""
    for name in ("LCT_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    api = _api()
    request, who = _request("/v1/budgets/nope", accept="fr-CA, en;q=0.5")
    body = json.loads(api.get_budget(request, who).body)
    assert body == {"error": "aucun budget nommé 'nope' (connus : aucun configuré)"}
    request, who = _request("/v1/budgets", accept="ja")
    assert "ストアから支出を読み取れません: OSError: disk gone" in json.loads(api.list_budgets(request, who).body)["error"]
    request, who = _request("/v1/advice", body=b"[]")
    assert json.loads(_api("de").advice(request, who).body)["error"] == "der Body muss ein JSON-Objekt sein, erhalten: list"
    request, who = _request("/v1/budgets")
    assert json.loads(api.list_budgets(request, who).body)["error"] == (
        "cannot read spend from the store: OSError: disk gone; retry shortly")
