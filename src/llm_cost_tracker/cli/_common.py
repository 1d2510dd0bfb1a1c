"""Flags shared by subcommands, mapped one to one onto :class:`~llm_cost_tracker.config.Settings` fields."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from llm_cost_tracker import config
from llm_cost_tracker.config import ConfigError, Settings
from llm_cost_tracker.ports import PortUnavailable
from llm_cost_tracker.protocols import Service
from llm_cost_tracker.runtime import tune_gc, tune_malloc


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file of settings (env: LCT_CONFIG)")


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help="embedded chDB store (default ./.llm-cost-tracker)")
    parser.add_argument("--clickhouse-url", metavar="URL",
                        help="a ClickHouse server over HTTP instead of the embedded store, e.g. http://user:pw@host:8123")


def add_service_flags(parser: argparse.ArgumentParser) -> None:
    add_config_flag(parser)
    add_store_flags(parser)
    g = parser.add_argument_group("listeners")
    g.add_argument("--otlp-grpc", metavar="HOST:PORT", help="OTLP/gRPC listen address (default 127.0.0.1:4317)")
    g.add_argument("--otlp-http", metavar="HOST:PORT",
                   help="OTLP/HTTP listen address, POST /v1/traces (default 127.0.0.1:4318; 'off')")
    g.add_argument("--http", metavar="HOST:PORT", help="/metrics, /healthz, /readyz (default 127.0.0.1:9464)")
    g.add_argument("--sql-http", metavar="HOST:PORT",
                   help="read-only ClickHouse HTTP interface over the embedded store (default 127.0.0.1:8123; 'off')")
    g.add_argument("--auth-token", metavar="TOKEN", help="require 'authorization: Bearer TOKEN' on every Export")
    g.add_argument("--metrics-token", metavar="TOKEN",
                   help="bearer token that may read /metrics (and nothing else); admin tokens may too")
    g.add_argument("--admin-tenant-from-payload", action="store_true", default=None,
                   help="spans sent with an admin token keep the tenant their payload names (a trusted gateway "
                        "forwarding many tenants); otherwise only an 'lct-tenant' header names one")
    g.add_argument("--tls-cert-file", metavar="PEM", help="serve TLS on both listeners with this certificate")
    g.add_argument("--tls-key-file", metavar="PEM", help="the certificate's private key")
    g.add_argument("--tls-client-ca-file", metavar="PEM", help="require client certificates signed by this CA (mTLS)")
    g.add_argument("--max-message-bytes", type=int, metavar="N", help="largest Export accepted (default 16 MiB)")
    g = parser.add_argument_group("forwarding (docs/forwarding.md)")
    g.add_argument("--forward-otlp", metavar="URL",
                   help="send every stored LLM span on with its cost: grpc://HOST:PORT or http(s)://HOST:PORT/v1/traces "
                        "(headers: LCT_FORWARD_HEADERS)")
    g.add_argument("--forward-all", action="store_true", default=None,
                   help="also pass the spans that are not LLM spans to the next hop, untouched (gateway)")
    g = parser.add_argument_group("pipeline")
    g.add_argument("--batch-size", type=int, metavar="ROWS", help="flush a batch at this many rows (default 40000)")
    g.add_argument("--batch-age-seconds", type=float, metavar="S", help="flush a batch this old (default 1.0)")
    g.add_argument("--queue-capacity", type=int, metavar="SPANS", help="in-process queue bound (default 200000)")
    g.add_argument("--ack", choices=config.ACK_MODES,
                   help="answer Export once spans are queued (default) or once they are stored")
    g.add_argument("--pricing-file", metavar="FILE", help="price overrides (TOML or YAML)")
    g.add_argument("--max-spans-per-request", type=int, metavar="N",
                   help="spans in one Export; more gets INVALID_ARGUMENT (default 65536)")
    g.add_argument("--max-attributes-per-request", type=int, metavar="N",
                   help="attributes in one Export; more gets INVALID_ARGUMENT (default 1048576)")
    g.add_argument("--max-attributes-per-span", type=int, metavar="N",
                   help="attributes stored per span, GenAI keys first (default 1024)")
    g.add_argument("--max-attribute-value-bytes", type=int, metavar="N",
                   help="longer attribute values are cut and marked (default 65536)")
    g.add_argument("--max-attribute-depth", type=int, metavar="N",
                   help="array/kvlist nesting kept in a value; deeper is marked (default 16)")
    g.add_argument("--max-attribute-key-bytes", type=int, metavar="N",
                   help="attributes with a longer key are dropped and counted (default 256)")
    g.add_argument("--tenant-attribute", metavar="KEY", help="resource attribute naming the tenant (default tenant.id)")
    g.add_argument("--call-window-entries", type=int, metavar="N",
                   help="LLM spans remembered to price each provider call once (default 100000)")
    g.add_argument("--call-window-seconds", type=float, metavar="S",
                   help="how long they are remembered (default 300)")
    g.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    g.add_argument("--log-format", choices=("auto", "json", "console"))


def add_format_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")


def add_lang_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", metavar="LANG",
                        help="language of table output: en, es, fr, de, ja, zh "
                             "(env: LCT_LANG, else LC_ALL/LC_MESSAGES/LANG)")


_NOT_SETTINGS = {"command", "func", "config", "format", "query", "by", "since", "until", "dry_run"}


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from defaults, ``--config``, ``LCT_*`` variables and the flags in ``args``; exits 2 on error."""
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS
                                 and k in Settings.__dataclass_fields__}
    try:
        settings = config.load(overrides, getattr(args, "config", None))
    except ConfigError as exc:
        print(f"llm-cost-tracker: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    for name in config.unknown_environment():
        print(f"llm-cost-tracker: warning: ignoring environment variable {name}: not a setting", file=sys.stderr)
    return settings


def serve(service: Service, logger: Any, until: Callable[[], bool] | None = None) -> int:
    """Start ``service``, run until SIGTERM/SIGINT (SIGHUP calls its ``reload``), then stop it.

    Every process is served here the same way: the all-in-one, the Kafka receiver, consumer or both, and
    the scheduler worker. ``until``: also stop once it returns True (the scheduler's burst mode: drained).

    Exit codes: 0 after a clean stop, 2 when the configuration, the store lock or a listen address in use
    refuses start-up (one line saying which setting to change), 1 for anything else that prevents starting
    (brokers refusing the client, ...), and what ``stop()`` returns when it is an int (3: accepted spans
    could be neither stored nor parked).
    """
    # aiokafka and clickhouse-connect load here, not for every command that parses flags
    from llm_cost_tracker.queue.kafka_client import IdempotenceRefused
    from llm_cost_tracker.storage.client import StoreLocked

    stop = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal received", signal=signal.Signals(signum).name)
        stop.set()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=service.reload, name="reload", daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    tune_malloc()  # big blocks mmapped and handed back when freed (runtime.MMAP_THRESHOLD)
    try:
        service.start()
    except (StoreLocked, ConfigError, PortUnavailable, IdempotenceRefused) as exc:
        logger.error(str(exc))
        return 2
    except Exception as exc:
        logger.error("cannot start", error=f"{type(exc).__name__}: {exc}")
        return 1
    tune_gc()  # after start: what start-up built is frozen out of every later collection
    tick = 1.0 if until is None else 0.2
    while not stop.wait(tick):
        if until is not None and until():
            break
    code = service.stop()
    return code if isinstance(code, int) else 0
