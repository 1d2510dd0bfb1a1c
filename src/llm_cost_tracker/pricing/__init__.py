"""The price catalog: every model's dated prices, name matching, exact span costs.

``PriceCatalog.load()`` builds an immutable catalog from the data files shipped in
``pricing/data`` and an optional user price file; ``quote()`` prices one span, ``quote_batch()``
many. ``ReloadingCatalog`` swaps in a fresh catalog on SIGHUP or file change. See docs/pricing.md.

The names below are the package's public face: modules outside ``pricing`` import from here, never from
its ``_private`` modules (the layers contract in pyproject.toml keeps the direction, this keeps the surface).
"""

from llm_cost_tracker.pricing._catalog import PriceCatalog, Resolution
from llm_cost_tracker.pricing._litellm import import_file
from llm_cost_tracker.pricing._model import (
    DIMENSIONS,
    SERVICE_TIERS,
    CatalogError,
    Entry,
    PriceVersion,
    RateCard,
)
from llm_cost_tracker.pricing._money import femto_to_per_mtok, femto_to_usd_str
from llm_cost_tracker.pricing._quote import TIER_ATTRIBUTES, USAGE_ATTRIBUTES, Quote, service_tier_from
from llm_cost_tracker.pricing._reload import ReloadingCatalog
from llm_cost_tracker.pricing._service import CatalogSyncer, export_catalog_metrics
from llm_cost_tracker.pricing._settings import PricingSettings, load_pricing_settings
from llm_cost_tracker.pricing._sync import sync
from llm_cost_tracker.pricing._validate import validate_file

__all__ = [
    "DIMENSIONS",
    "SERVICE_TIERS",
    "TIER_ATTRIBUTES",
    "USAGE_ATTRIBUTES",
    "CatalogError",
    "CatalogSyncer",
    "Entry",
    "PriceCatalog",
    "PriceVersion",
    "PricingSettings",
    "Quote",
    "RateCard",
    "ReloadingCatalog",
    "Resolution",
    "export_catalog_metrics",
    "femto_to_per_mtok",
    "femto_to_usd_str",
    "import_file",
    "load_pricing_settings",
    "service_tier_from",
    "sync",
    "validate_file",
]
