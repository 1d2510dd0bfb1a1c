"""``llm-cost-tracker pricing``: show, cost, list, import, validate, sync, diff. A thin layer over ``pricing``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

_TIERS = ("standard", "batch", "flex", "priority")


def register(subparsers: Any) -> None:
    """Add the ``pricing`` command group to the top-level parser."""
    parser = subparsers.add_parser("pricing", help="inspect and maintain the price catalog")
    sub = parser.add_subparsers(dest="pricing_command", metavar="SUBCOMMAND")
    sub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--provider", default="", help="provider as spans name it (openai, aws.bedrock, ...)")
        p.add_argument("--at", default=None, help="price in force at this ISO date/time (default: now)")
        p.add_argument("--prices", default=None, metavar="FILE", help="user price file (TOML or YAML)")
        p.add_argument("--tenant", default="", help="tenant whose prices apply")
        p.add_argument("--data-dir", default=None, metavar="DIR",
                       help="also apply the prices `pricing sync` recorded in DIR (the service's data_dir)")

    show = sub.add_parser("show", help="the catalog entry a model resolves to, with its rates")
    show.add_argument("model")
    common(show)
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.add_argument("--lang", metavar="LANG",
                      help="language of text output: en, es, fr, de, ja, zh (env: LCT_LANG, else LC_ALL/LC_MESSAGES/LANG)")
    show.set_defaults(func=_show)

    cost = sub.add_parser("cost", help="what a call with these token counts costs")
    cost.add_argument("model")
    cost.add_argument("--input", type=int, default=0, help="prompt tokens, cached tokens included")
    cost.add_argument("--output", type=int, default=0, help="generated tokens, reasoning included")
    cost.add_argument("--cache-read", type=int, default=0)
    cost.add_argument("--cache-write", type=int, default=0)
    cost.add_argument("--reasoning", type=int, default=0)
    cost.add_argument("--tier", choices=_TIERS, default="standard", help="service tier")
    for flag, what in (("--input-audio", "input audio tokens (inside --input)"),
                       ("--output-audio", "output audio tokens (inside --output)"),
                       ("--input-image", "input image tokens (inside --input)"),
                       ("--output-image", "output image tokens (inside --output; an image model's output "
                                          "tokens are all image tokens unless this says otherwise)"),
                       ("--input-characters", "characters of input (speech)"),
                       ("--output-characters", "characters of output"),
                       ("--input-images", "images in"), ("--output-images", "images generated"),
                       ("--searches", "web-search queries")):
        cost.add_argument(flag, type=int, default=0, help=what)
    cost.add_argument("--input-seconds", type=Decimal, default=Decimal(0), help="seconds of audio/video in")
    cost.add_argument("--output-seconds", type=Decimal, default=Decimal(0), help="seconds of audio/video out")
    common(cost)
    cost.add_argument("--format", choices=("text", "json"), default="text")
    cost.set_defaults(func=_cost)

    lst = sub.add_parser("list", help="every catalog entry (optionally of one provider)")
    lst.add_argument("--provider", default="")
    lst.add_argument("--prices", default=None, metavar="FILE")
    lst.add_argument("--format", choices=("text", "json"), default="text")
    lst.set_defaults(func=_list)

    imp = sub.add_parser("import", help="convert LiteLLM's model price map into the catalog's data files")
    imp.add_argument("file", help="model_prices_and_context_window(_backup).json")
    imp.add_argument("--out", default=None, help="data directory (default: the package's pricing/data)")
    imp.add_argument("--provider", action="append", default=None, help="only this provider (repeatable)")
    imp.add_argument("--recorded", default=None, help="ISO date to record (default: today)")
    imp.add_argument("--litellm-version", default="", help="LiteLLM version the file came from")
    imp.set_defaults(func=_import)

    val = sub.add_parser("validate", help="check a catalog data file or a user price file")
    val.add_argument("file")
    val.set_defaults(func=_validate)

    for name, helptext in (("sync", "take a newer price list and record it as a dated version in the data dir"),
                           ("diff", "show what `pricing sync` would change (records nothing)")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--from", dest="source", required=True, metavar="URL|FILE",
                        help="LiteLLM's model_prices_and_context_window.json or a catalog data file (http(s)://, "
                             "file:// or a path)")
        sp.add_argument("--data-dir", default="./.llm-cost-tracker", metavar="DIR",
                        help="the service's data_dir: layers go to DIR/prices (default ./.llm-cost-tracker)")
        sp.add_argument("--max-factor", type=Decimal, default=None,
                        help="refuse a price moving by more than this factor (default 5, or [pricing] "
                             "sync_max_change_factor)")
        sp.add_argument("--config", default=None, help="config file whose [pricing] table applies")
        sp.add_argument("--format", choices=("text", "json"), default="text")
        if name == "sync":
            sp.add_argument("--accept-changes", action="store_true",
                            help="record prices that drop to 0 or move by more than the factor too")
        sp.set_defaults(func=_sync if name == "sync" else _diff)


def _usd(pico: int) -> str:
    text = format(Decimal(pico).scaleb(-12), "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"


def _at_ns(text: str | None) -> int:
    if not text:
        return int(datetime.now(UTC).timestamp() * 1e9)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def _catalog(args: argparse.Namespace) -> Any:
    from llm_cost_tracker.pricing import PriceCatalog

    return PriceCatalog.load(overrides=args.prices, data_dir=getattr(args, "data_dir", None))


def _did_you_mean(catalog: Any, provider: str, model: str) -> str:
    near = catalog.suggest(provider, model)
    return f"; did you mean {' or '.join(near)}?" if near else ""


def _card_dict(card: Any) -> dict[str, Any]:
    from llm_cost_tracker.pricing import DIMENSIONS, femto_to_per_mtok, femto_to_usd_str

    out: dict[str, Any] = {"above_input_tokens": card.above_input_tokens}
    for dim in DIMENSIONS:
        value = card.rate(dim)
        out[dim] = femto_to_usd_str(value) if dim == "per_request" else femto_to_per_mtok(value)
    if card.fallbacks:
        out["fallbacks"] = list(card.fallbacks)
    return out


_RATE_DIMENSIONS = ("input", "output", "cache_read", "cache_write", "reasoning")


def _show(args: argparse.Namespace) -> int:
    from llm_cost_tracker.i18n import NP_, cli_translator

    t = cli_translator(args.lang) if args.format == "text" else cli_translator("en")
    catalog = _catalog(args)
    resolution = catalog.resolve(args.provider, args.model, args.tenant)
    if resolution is None:
        print(t._("unpriced: no catalog entry for {model} (provider {provider})").format(
            model=repr(args.model), provider=repr(args.provider))
            + _did_you_mean(catalog, args.provider, args.model), file=sys.stderr)
        return 1
    entry = resolution.entry
    at = _at_ns(args.at)
    current = entry.version_at(at)
    data = {
        "entry": entry.key,
        "match": resolution.match,
        "mode": entry.mode,
        "aliases": list(entry.aliases),
        "deprecation_date": entry.deprecation_date,
        "version_in_force": current.version if current else None,
        "versions": [
            {
                "version": v.version,
                "effective_from": _iso(v.effective_from_ns),
                "effective_to": _iso(v.effective_to_ns),
                "source": v.source,
                "recorded": v.recorded,
                "tiers": {tier: [_card_dict(c) for c in reversed(cards)] for tier, cards in v.tiers.items()},
            }
            for v in entry.versions
        ],
    }
    if args.format == "json":
        print(json.dumps(data, indent=2))
        return 0
    # Dimension names as shown in text output (msgctxt "price dimension"); JSON keeps the keys.
    labels = {dim: t.pgettext("price dimension", msg) for dim, msg in zip(_RATE_DIMENSIONS, (
        NP_("price dimension", "input"), NP_("price dimension", "output"), NP_("price dimension", "cache_read"),
        NP_("price dimension", "cache_write"), NP_("price dimension", "reasoning")), strict=True)}
    print(t._("{entry}  (matched {model} by {match}; mode {mode})").format(
        entry=entry.key, model=repr(args.model), match=resolution.match, mode=entry.mode))
    if entry.aliases:
        print(t._("aliases: {aliases}").format(aliases=", ".join(entry.aliases)))
    for version in data["versions"]:
        mark = "*" if version["version"] == data["version_in_force"] else " "
        print(f"{mark} " + t._("version {version} ({start} to {end}): {source} (recorded {recorded})").format(
            version=version["version"], start=version["effective_from"] or "...",
            end=version["effective_to"] or "...", source=version["source"], recorded=version["recorded"]))
        for tier, cards in version["tiers"].items():
            for card in cards:
                band = (t._(" above {tokens} input tokens").format(tokens=t.number(card["above_input_tokens"]))
                        if card["above_input_tokens"] else "")
                rates = ", ".join(f"{labels[dim]} {t.number(card[dim])}" for dim in _RATE_DIMENSIONS)
                fee = (t._(", per request {amount}").format(
                    amount=t.money(card["per_request"]) if t.localized else f"${card['per_request']}")
                       if card["per_request"] != "0" else "")
                print("    " + t._("{tier}{band}: USD per 1M tokens: {rates}{fee}").format(
                    tier=tier, band=band, rates=rates, fee=fee))
    if data["version_in_force"] is None:
        print(t._("no version in force at the given time"))
    return 0


def _cost(args: argparse.Namespace) -> int:
    from llm_cost_tracker.types import TokenUsage, UsageDetail

    catalog = _catalog(args)
    usage = TokenUsage(args.input, args.output, args.cache_read, args.cache_write, args.reasoning, UsageDetail(
        input_audio_tokens=args.input_audio, output_audio_tokens=args.output_audio,
        input_image_tokens=args.input_image, output_image_tokens=args.output_image,
        input_duration_ms=int(args.input_seconds * 1000), output_duration_ms=int(args.output_seconds * 1000),
        input_characters=args.input_characters, output_characters=args.output_characters,
        input_images=args.input_images, output_images=args.output_images, search_requests=args.searches))
    attributes = {"llm_cost_tracker.service_tier": args.tier} if args.tier != "standard" else None
    quote = catalog.quote(args.provider, args.model, _at_ns(args.at), usage, attributes, args.tenant)
    if quote is None:
        print(f"unpriced: no price for {args.model!r} (provider {args.provider!r})"
              + _did_you_mean(catalog, args.provider, args.model), file=sys.stderr)
        return 1
    status = "partial" if quote.missing else "priced"
    if args.format == "json":
        print(
            json.dumps(
                {
                    "pricing_model": quote.pricing_model,
                    "price_version": quote.price_version,
                    "match": quote.match,
                    "service_tier": quote.service_tier,
                    "cost_usd": _usd(quote.cost_pusd),
                    "cost_pusd": quote.cost_pusd,
                    "breakdown_usd": {k: _usd(v) for k, v in quote.breakdown.items()},
                    "fallbacks": list(quote.fallbacks),
                    "pricing_status": status,
                    "missing": list(quote.missing),
                },
                indent=2,
            )
        )
        return 0
    print(f"{quote.pricing_model}  version {quote.price_version}  tier {quote.service_tier}  ({quote.match})")
    for dim, pico in quote.breakdown.items():
        print(f"  {dim:<15} ${_usd(pico)}")
    for dim in quote.missing:
        print(f"  {dim:<15} no price (partial)")
    print(f"  {'total':<15} ${_usd(quote.cost_pusd)}" + ("  partial: without " + ", ".join(quote.missing)
                                                         if quote.missing else ""))
    if quote.fallbacks:
        print(f"  rates not in the data: {', '.join(quote.fallbacks)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from llm_cost_tracker.pricing import femto_to_per_mtok

    catalog = _catalog(args)
    rows = []
    for entry in catalog.list(args.provider or None):
        card = entry.latest.standard
        rows.append(
            {
                "entry": entry.key,
                "mode": entry.mode,
                "input": femto_to_per_mtok(card.input),
                "output": femto_to_per_mtok(card.output),
                "versions": len(entry.versions),
            }
        )
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'entry':<70} {'mode':<16} {'input/1M':>10} {'output/1M':>10}")
    for row in rows:
        print(f"{row['entry']:<70} {row['mode']:<16} {row['input']:>10} {row['output']:>10}")
    print(f"{len(rows)} entries")
    return 0


def _import(args: argparse.Namespace) -> int:
    from importlib import resources

    from llm_cost_tracker.pricing import import_file

    out = Path(args.out) if args.out else Path(str(resources.files("llm_cost_tracker.pricing") / "data"))
    out.mkdir(parents=True, exist_ok=True)
    recorded = args.recorded or datetime.now(UTC).date().isoformat()
    counts = import_file(
        args.file, out, recorded=recorded, litellm_version=args.litellm_version, providers=args.provider
    )
    for provider, count in counts.items():
        print(f"{provider:<24} {count:>5} entries")
    print(f"wrote {len(counts)} data files ({sum(counts.values())} entries) to {out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from llm_cost_tracker.pricing import validate_file

    errors, summary = validate_file(args.file)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"{args.file}: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{args.file}: ok ({summary})")
    return 0


def _sync_common(args: argparse.Namespace, dry_run: bool) -> int:
    from llm_cost_tracker.pricing import CatalogError, PriceCatalog, load_pricing_settings, sync

    factor = args.max_factor or load_pricing_settings(args.config).sync_max_change_factor
    current = PriceCatalog.load(data_dir=args.data_dir)
    try:
        result = sync(args.source, args.data_dir, current.entries, accept_changes=getattr(args, "accept_changes", False),
                      max_factor=factor, dry_run=dry_run)
    except (CatalogError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"entries": result.entries, "refused": result.refused,
                          "layer": str(result.layer) if result.layer else None,
                          "changes": [{"entry": c.key, "kind": c.kind, "details": list(c.details)}
                                      for c in result.changes]}, indent=2))
    else:
        marks = {"new": "+", "changed": "~", "refused": "!"}
        for change in result.changes:
            print(f"{marks[change.kind]} {change.key}" + (" (new)" if change.kind == "new" else ""))
            for line in change.details:
                print(f"    {line}")
        kinds = [c.kind for c in result.changes]
        print(f"{result.entries} entries read: {kinds.count('new')} new, {kinds.count('changed')} changed, "
              f"{kinds.count('refused')} refused (factor {factor})")
        if result.refused:
            print("refused: nothing recorded; check the changes marked ! and re-run `pricing sync --accept-changes` "
                  "if they are right", file=sys.stderr)
        elif result.layer is not None:
            print(f"recorded {result.layer}: new spans are priced with it (the service reloads on its next sync, or on "
                  "SIGHUP); spans stored earlier keep their prices (`reprice` changes them)")
        elif not dry_run:
            print("no price changed")
    return 2 if result.refused else 0


def _sync(args: argparse.Namespace) -> int:
    return _sync_common(args, dry_run=False)


def _diff(args: argparse.Namespace) -> int:
    return _sync_common(args, dry_run=True)
