"""The price catalog: every model's dated prices, name matching, exact span costs.

``PriceCatalog.load()`` builds an immutable catalog from the data files shipped in
``pricing/data`` and an optional user price file; ``quote()`` prices one span, ``quote_batch()``
many. ``ReloadingCatalog`` swaps in a fresh catalog on SIGHUP or file change. See docs/pricing.md.
"""

from llm_cost_tracker.pricing._catalog import PriceCatalog, Resolution
from llm_cost_tracker.pricing._model import (
    DIMENSIONS,
    SERVICE_TIERS,
    CatalogError,
    Entry,
    PriceVersion,
    RateCard,
)
from llm_cost_tracker.pricing._quote import Quote, service_tier_from
from llm_cost_tracker.pricing._reload import ReloadingCatalog

__all__ = [
    "DIMENSIONS",
    "SERVICE_TIERS",
    "CatalogError",
    "Entry",
    "PriceCatalog",
    "PriceVersion",
    "Quote",
    "RateCard",
    "ReloadingCatalog",
    "Resolution",
    "service_tier_from",
]
