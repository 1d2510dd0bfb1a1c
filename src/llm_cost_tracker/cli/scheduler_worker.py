"""``scheduler``: the worker that solves task batches from Kafka (docs/scheduler.md, "Worker")."""

from __future__ import annotations

import argparse

from llm_cost_tracker import log
from llm_cost_tracker.cli._common import add_config_flag, add_store_flags, serve, settings_from
from llm_cost_tracker.cli.kafka import add_kafka_flags


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("scheduler", help="solve LLM task batches from a Kafka topic (the scheduler worker)",
                       description="Read JSON task batches from a Kafka topic in a consumer group, solve each, "
                                   "store the result in ClickHouse (schedules table), publish it to the "
                                   "results topic (key: batch id) and only then commit the batch.")
    add_config_flag(p)
    add_store_flags(p)
    p.add_argument("--http", metavar="HOST:PORT", help="/metrics, /healthz, /readyz (default 127.0.0.1:9464)")
    p.add_argument("--burst", action="store_true",
                   help="answer every batch waiting in the assigned partitions, then exit")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument("--log-format", choices=("auto", "json", "console"))
    add_kafka_flags(p)
    g = p.add_argument_group("scheduler")
    g.add_argument("--tasks-topic", dest="scheduler_tasks_topic", metavar="TOPIC",
                   help="topic of task batches (default llm-cost.tasks.v1)")
    g.add_argument("--results-topic", dest="scheduler_results_topic", metavar="TOPIC",
                   help="topic of results (default llm-cost.schedules.v1)")
    g.add_argument("--group-id", dest="scheduler_group_id", metavar="GROUP",
                   help="consumer group (default llm-cost-tracker-scheduler)")
    g.add_argument("--kafka-session-timeout-ms", type=int, metavar="MS", help="group session timeout")
    g.add_argument("--kafka-heartbeat-interval-ms", type=int, metavar="MS", help="group heartbeat interval")
    g.add_argument("--max-schedules", dest="scheduler_max_schedules", type=int, metavar="N",
                   help="schedules decoded per batch (default 5000)")
    g.add_argument("--time-limit", dest="scheduler_time_limit_seconds", type=float, metavar="SECONDS",
                   help="wall-clock limit per batch; past it the greedy fallback answers (default 30)")
    g.add_argument("--concurrency", dest="scheduler_concurrency", type=int, metavar="N",
                   help="batches solved at once (default 2)")
    g.add_argument("--shutdown-seconds", dest="scheduler_shutdown_seconds", type=float, metavar="SECONDS",
                   help="on SIGTERM, time the batches in hand get before they are cancelled (default 30)")
    p.set_defaults(func=_scheduler)


def _scheduler(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    log.configure(settings.log_level, settings.log_format)
    logger = log.get_logger("cli")
    if not settings.kafka_bootstrap:
        logger.error("scheduler needs --kafka-bootstrap (or LCT_KAFKA_BOOTSTRAP)")
        return 2
    # the worker's stack (aiokafka, the solver, chDB) loads for this command only
    from llm_cost_tracker.services.scheduler import SchedulerWorker

    worker = SchedulerWorker(settings, burst=args.burst)
    # burst: start, answer what is waiting, stop (SIGTERM/SIGINT stop early; the batches in hand are redelivered)
    return serve(worker, logger, until=(lambda: worker.done) if args.burst else None)
