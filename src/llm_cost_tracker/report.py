"""Spend reports over the stored spans: the SQL behind ``llm-cost-tracker report``."""

from __future__ import annotations

import re
from dataclasses import dataclass

GROUPINGS = {
    "model": "if(response_model != '', response_model, request_model)",
    "service": "service_name",
    "provider": "provider",
    "tenant": "tenant",
    "day": "toDate(timestamp)",
}
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> int:
    """Seconds in a duration like ``90m``, ``24h`` or ``7d``; raises ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"expected a duration like 30m, 24h or 7d, got {text!r}")
    return int(match.group(1)) * _SECONDS[match.group(2)]


@dataclass(frozen=True, slots=True)
class ReportQuery:
    by: str
    since_seconds: int

    def sql(self) -> str:
        """Spend, spans and tokens per group over the window, most expensive first."""
        if self.by not in GROUPINGS:
            raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
        key = GROUPINGS[self.by]
        return (
            f"SELECT {key} AS {self.by}, count() AS spans, "
            "sum(cost_usd) AS cost_usd, countIf(pricing_status = 'unpriced') AS unpriced_spans, "
            "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
            "sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens, "
            "sum(reasoning_tokens) AS reasoning_tokens "
            "FROM llm_spans "
            f"WHERE timestamp >= now64(9) - toIntervalSecond({int(self.since_seconds)}) "
            f"GROUP BY {self.by} ORDER BY cost_usd DESC NULLS LAST, spans DESC, {self.by}"
        )
