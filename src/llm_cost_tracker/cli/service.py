"""``run``: the all-in-one service (receiver, queue and ClickHouse writer in one process)."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from llm_cost_tracker import log
from llm_cost_tracker.cli._common import add_service_flags, settings_from
from llm_cost_tracker.cli.kafka import add_kafka_flags, run_kafka


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the all-in-one service on the embedded defaults",
                       description="Receive OTLP/gRPC spans, price the LLM ones and store them in ClickHouse "
                                   "(embedded chDB unless --clickhouse-url is given).")
    add_service_flags(p)
    add_kafka_flags(p, consumer=True)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    log.configure(settings.log_level, settings.log_format)
    logger = log.get_logger("cli")
    if settings.kafka_bootstrap:
        return run_kafka(settings)  # receiver + consumer in one process, through the broker
    from llm_cost_tracker.config import ConfigError
    from llm_cost_tracker.pipeline import AllInOne
    from llm_cost_tracker.storage.client import StoreLocked

    service = AllInOne(settings)
    stop = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal received", signal=signal.Signals(signum).name)
        stop.set()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=service.reload, name="reload", daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        service.start()
    except (StoreLocked, ConfigError) as exc:
        logger.error(str(exc))
        return 2
    except OSError as exc:
        logger.error("cannot start", error=str(exc))
        return 1
    while not stop.wait(1.0):
        pass
    service.stop()
    return 0
