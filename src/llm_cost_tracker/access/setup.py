"""Builds the access objects of a receiver from its settings (shared by every receiver flavour)."""

from __future__ import annotations

from llm_cost_tracker.access.cardinality import LabelFolder
from llm_cost_tracker.access.guard import AccessGuard
from llm_cost_tracker.access.tls import TlsFiles
from llm_cost_tracker.access.tokens import ReloadingTokens, TokenTable
from llm_cost_tracker.config import Settings, config_sections


def load_tokens(settings: Settings) -> ReloadingTokens:
    """Tokens from ``--auth-token`` and the config file's ``[auth]`` table, reloadable on SIGHUP."""

    def load() -> TokenTable:
        section = config_sections(settings.config_file).get("auth", {})
        return TokenTable.parse(section, legacy_token=settings.auth_token)

    return ReloadingTokens(load)


def apply_label_limits(folder: LabelFolder, table: TokenTable) -> None:
    """Give each configured tenant its own model and service label quotas."""
    for policy in table.tenants.values():
        folder.set_limit(policy.name, "model", policy.max_models)
        folder.set_limit(policy.name, "service", policy.max_services)


def build_guard(tokens: ReloadingTokens) -> AccessGuard:
    return AccessGuard(lambda: tokens.current)


def tls_files(settings: Settings) -> TlsFiles | None:
    """The listeners' TLS files, or None for plaintext."""
    if not settings.tls_cert_file:
        return None
    return TlsFiles(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
