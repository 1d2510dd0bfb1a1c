"""The forwarder built from its section (``--forward-otlp`` and the other ``forward_*`` settings, which
:class:`~llm_cost_tracker.config.ForwardConfig` checks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from llm_cost_tracker.config import ForwardConfig
from llm_cost_tracker.forward.queue import Forwarder, ForwardMetrics
from llm_cost_tracker.forward.sender import parse_target, sender_for
from llm_cost_tracker.forward.spans import catalog_split

__all__ = ["build_forwarder"]


def build_forwarder(config: ForwardConfig, registry: CollectorRegistry,
                    catalog: Callable[[], Any] | None) -> Forwarder | None:
    """The forwarder ``config`` (``settings.forward``) asks for (not started), or None without ``forward_otlp``.

    ``catalog`` returns the price catalog in force: with it, forwarded spans carry the prompt/completion split.
    """
    s = config
    if not s.forward_otlp:
        return None
    target = parse_target(s.forward_otlp, s.forward_headers, s.forward_ca_file, s.forward_client_cert_file,
                          s.forward_client_key_file, s.forward_timeout_seconds)
    return Forwarder(sender_for(target), s.forward_queue_spans, ForwardMetrics(registry),
                     split=catalog_split(catalog) if catalog is not None else None,
                     retry_max=s.forward_retry_max_seconds, target=target.describe())
