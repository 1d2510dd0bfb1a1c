"""Budgets managed at run time (``PUT``/``DELETE /v1/budgets/{name}``), kept in ``budget_definitions``.

The config file stays the source of the budgets it declares (they cannot be replaced or deleted
through the API); the API's budgets are stored as the JSON table they were given, one row per change,
the latest version per name winning (``argMax``), and read back at start-up so a restart keeps them.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from llm_cost_tracker.budgets._config import Budget, BudgetConfigError, parse_budget
from llm_cost_tracker.budgets._sql import quote
from llm_cost_tracker.log import get_logger

__all__ = ["DEFINITIONS_TABLE", "BudgetDefinitions"]

log = get_logger("budgets")
DEFINITIONS_TABLE = "budget_definitions"


class BudgetDefinitions:
    """Reads and writes the API's budgets.

    Args:
        client: a store client (None: nothing is persisted, for tests of the service alone).
        lock: serialises calls on ``client``.
    """

    def __init__(self, client: Any, lock: threading.Lock) -> None:
        self._client = client
        self._lock = lock

    def load(self) -> list[Budget]:
        """The stored budgets (a row that no longer validates is skipped and logged, never fatal)."""
        if self._client is None:
            return []
        with self._lock:
            rows = self._client.query(
                f"SELECT name, argMax(definition, version) AS d FROM {DEFINITIONS_TABLE} GROUP BY name "
                f"HAVING argMax(deleted, version) = 0 ORDER BY name").result_rows
        out = []
        for name, definition in rows:
            try:
                out.append(parse_budget(json.loads(definition), str(name)))
            except (ValueError, BudgetConfigError) as exc:
                log.error("stored budget skipped: no longer valid", budget=str(name), error=str(exc)[:300])
        return out

    def _write(self, name: str, definition: str, deleted: int) -> None:
        if self._client is None:
            return
        with self._lock:
            self._client.insert(DEFINITIONS_TABLE, [[name, definition, deleted, time.time_ns()]],
                                column_names=["name", "definition", "deleted", "version"])

    def save(self, name: str, table: dict[str, Any]) -> None:
        """Store ``table`` (already validated by :func:`parse_budget`) as the definition of ``name``."""
        self._write(name, json.dumps({**table, "name": name}, sort_keys=True), 0)

    def delete(self, name: str) -> None:
        self._write(name, "{}", 1)

    def exists(self, name: str) -> bool:
        if self._client is None:
            return False
        with self._lock:
            rows = self._client.query(f"SELECT argMax(deleted, version) FROM {DEFINITIONS_TABLE} "
                                      f"WHERE name = {quote(name)} GROUP BY name").result_rows
        return bool(rows) and rows[0][0] == 0
