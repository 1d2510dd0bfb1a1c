"""Priced spans out: every LLM span the service stored, sent on to the next OTLP hop with its cost.

``spans`` turns stored records into OTLP spans with the cost attributes, ``sender`` speaks OTLP/gRPC or
OTLP/HTTP to the next hop, ``queue`` holds what is not sent yet (bounded, retried, drained on
shutdown) and ``setup`` builds them from the settings. docs/forwarding.md.
"""

from __future__ import annotations

from llm_cost_tracker.forward.queue import Forwarder, ForwardGate, ForwardMetrics
from llm_cost_tracker.forward.setup import build_forwarder

__all__ = ["ForwardGate", "ForwardMetrics", "Forwarder", "build_forwarder"]
