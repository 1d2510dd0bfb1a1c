"""``run``: the all-in-one service (receiver, queue and ClickHouse writer in one process)."""

from __future__ import annotations

import argparse

from llm_cost_tracker import log
from llm_cost_tracker.cli._common import add_service_flags, serve, settings_from
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
    from llm_cost_tracker.pipeline import AllInOne  # the service's stack loads for this command only

    return serve(AllInOne(settings), logger)
