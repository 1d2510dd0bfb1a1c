"""Shared fixtures: one bundled catalog per test session (loading takes ~0.2 s)."""

from __future__ import annotations

import pytest

from llm_cost_tracker.pricing import PriceCatalog


@pytest.fixture(scope="session")
def catalog() -> PriceCatalog:
    """The bundled catalog without user overrides."""
    return PriceCatalog.load()
