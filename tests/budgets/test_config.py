"""Budget configuration: parsing, defaults and validation that reports every problem at once."""

import pytest

from llm_cost_tracker.budgets import BudgetConfigError, Scope, load_budgets, parse_budgets
from llm_cost_tracker.budgets._config import DEFAULT_THRESHOLDS, parse_duration, parse_limit
from llm_cost_tracker.config import ConfigError, load

FULL = '''
log_level = "info"

[budget_options]
refresh_seconds = 2

[[budgets]]
name = "acme-monthly"
description = "Acme, all models"
limit_usd = 500.10
period = "month"
timezone = "Europe/Berlin"
thresholds = ["50%", 0.9, 1.0]
downgrade = { "gpt-4o" = ["gpt-4o-mini", "gpt-4.1-nano"] }
downgrade_from = 0.9
burn_window = "3h"
[budgets.scope]
tenant = "acme"
service = ["chat-api", "search"]
attributes = { "team" = "search" }

[[budgets]]
name = "all-day"
limit_usd = "20"
period = "day"
'''


def test_full_config_from_toml(tmp_path) -> None:
    """Every field of a [[budgets]] table is read, and the settings loader ignores the array of tables."""
    path = tmp_path / "lct.toml"
    path.write_text(FULL)
    settings = load({}, path, {})
    assert settings.config_file == str(path)
    budgets, options = load_budgets(settings.config_file)
    assert options.refresh_seconds == 2
    acme, day = budgets
    assert acme.name == "acme-monthly" and acme.period == "month" and acme.timezone == "Europe/Berlin"
    assert acme.limit_pusd == 500_100_000_000_000
    assert acme.thresholds == (0.5, 0.9, 1.0)
    assert acme.downgrade == {"gpt-4o": ("gpt-4o-mini", "gpt-4.1-nano")}
    assert acme.downgrade_from == 0.9 and acme.burn_window_seconds == 3 * 3600
    assert acme.scope == Scope(tenant=("acme",), service=("chat-api", "search"), attributes=(("team", ("search",)),))
    assert (day.limit_pusd, day.period, day.timezone, day.thresholds) == (20 * 10**12, "day", "UTC", DEFAULT_THRESHOLDS)
    assert day.scope == Scope()


def test_no_budgets_section_means_no_budgets(tmp_path) -> None:
    """A config file without budgets (or no file at all) gives no budgets and the default options."""
    path = tmp_path / "lct.toml"
    path.write_text('log_level = "debug"\n')
    assert load_budgets(str(path))[0] == []
    assert load_budgets(None)[0] == []


def test_all_problems_reported_together() -> None:
    """Every invalid field of every budget is listed in one error, each naming its budget."""
    with pytest.raises(BudgetConfigError) as info:
        parse_budgets({"budgets": [
            {"name": "bad name!", "limit_usd": 1},
            {"name": "a", "limit_usd": -5, "period": "year", "timezone": "Mars/Olympus", "colour": "red",
             "thresholds": [0, "80%"], "scope": {"team": "x", "tenant": []}},
            {"name": "b", "limit_usd": "0.0000000000001", "downgrade": {"gpt-4o": ["gpt-4o"]},
             "burn_window": "soon"},
            {"name": "b", "limit_usd": 1},
            {"name": "c"},
        ], "budget_options": {"refresh_seconds": -1}})
    problems = info.value.problems
    assert isinstance(info.value, ConfigError)
    text = "\n".join(problems)
    for needle in ("budgets[0].name", "budgets[1] (a).limit_usd: must be > 0", "budgets[1] (a).period",
                   "Mars/Olympus", "unknown key 'colour'", "budgets[1] (a).thresholds", "unknown key 'team'",
                   "budgets[1] (a).scope.tenant", "more than 12 decimal places", "cannot downgrade to itself",
                   "budgets[2] (b).burn_window", "'b' is used 2 times", "budgets[4] (c).limit_usd: required",
                   "budget_options.refresh_seconds"):
        assert needle in text, needle
    assert len(problems) >= 14


def test_budgets_must_be_an_array_of_tables() -> None:
    """A single [budgets] table is rejected with a hint to write [[budgets]]."""
    with pytest.raises(BudgetConfigError, match=r"\[\[budgets\]\]"):
        parse_budgets({"budgets": {"name": "x", "limit_usd": 1}})


def test_limits_are_exact() -> None:
    """USD limits become exact pico-USD, from floats, integers and decimal strings alike."""
    assert parse_limit(0.1) == 100_000_000_000
    assert parse_limit("1234.567890123456") == 1_234_567_890_123_456
    assert parse_limit(3) == 3 * 10**12
    for bad in (True, "abc", float("nan"), "inf", 0, None):
        with pytest.raises(ValueError):
            parse_limit(bad)


def test_durations() -> None:
    """Burn windows accept minutes, hours, days or a number of seconds."""
    assert [parse_duration(x) for x in ("30m", "6h", "2d", 90)] == [1800, 21600, 172800, 90]
    for bad in ("0h", "6 hours", -1, "1w"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_scope_matching() -> None:
    """Each set dimension must match one of its values; unset dimensions match anything."""
    scope = Scope(tenant=("acme",), model=("gpt-4o", "gpt-4o-mini"), attributes=(("team", ("search",)),))
    assert scope.matches("acme", "svc", "openai", "gpt-4o", {"team": "search"})
    assert not scope.matches("acme", "svc", "openai", "gpt-4o", {"team": "chat"})
    assert not scope.matches("acme", "svc", "openai", "gpt-4o", {})
    assert not scope.matches("other", "svc", "openai", "gpt-4o-mini", {"team": "search"})
    assert Scope().matches("", "", "", "", {})
