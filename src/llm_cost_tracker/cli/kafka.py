"""``receiver`` and ``consumer``: the two halves of the Kafka deployment, and ``dlq replay`` (docs/kafka.md)."""

from __future__ import annotations

import argparse

from llm_cost_tracker import config, log
from llm_cost_tracker.cli._common import add_config_flag, add_service_flags, serve, settings_from


def add_kafka_flags(parser: argparse.ArgumentParser, consumer: bool = False) -> None:
    """The Kafka flags (each also settable as ``LCT_<NAME>`` or in the config file)."""
    g = parser.add_argument_group("kafka")
    g.add_argument("--kafka-bootstrap", metavar="HOST:PORT[,HOST:PORT]", help="Kafka bootstrap servers")
    g.add_argument("--kafka-topic", metavar="TOPIC", help="span topic (default llm-cost.spans.v1)")
    g.add_argument("--kafka-dlq-topic", metavar="TOPIC", help="dead-letter topic (default llm-cost.spans.dlq)")
    g.add_argument("--no-kafka-idempotence", dest="kafka_idempotence", action="store_const", const=False,
                   default=None, help="disable the idempotent producer (for brokers without it)")
    g.add_argument("--kafka-compression", choices=config.COMPRESSIONS, help="batch compression (default zstd)")
    g.add_argument("--kafka-linger-ms", type=int, metavar="MS", help="producer linger (default 5)")
    g.add_argument("--kafka-partitions", type=int, metavar="N",
                   help="partitions of topics created when missing (default 6; 0: never create topics)")
    g.add_argument("--kafka-request-timeout-ms", type=int, metavar="MS",
                   help="broker acknowledgement deadline (default 10000)")
    g.add_argument("--kafka-max-in-flight-records", type=int, metavar="N",
                   help="receiver: unacknowledged records before RESOURCE_EXHAUSTED (default 100000)")
    g.add_argument("--kafka-security-protocol", choices=config.KAFKA_SECURITY_PROTOCOLS)
    g.add_argument("--kafka-sasl-mechanism", choices=config.KAFKA_SASL_MECHANISMS)
    g.add_argument("--kafka-sasl-username", metavar="USER")
    g.add_argument("--kafka-sasl-password", metavar="PASSWORD", help="prefer LCT_KAFKA_SASL_PASSWORD")
    g.add_argument("--kafka-ssl-cafile", metavar="PEM", help="CA bundle for the brokers' certificates")
    g.add_argument("--kafka-ssl-certfile", metavar="PEM", help="client certificate (mTLS)")
    g.add_argument("--kafka-ssl-keyfile", metavar="PEM", help="client certificate's key")
    if consumer:
        g.add_argument("--group-id", dest="kafka_group_id", metavar="GROUP",
                       help="consumer group (default llm-cost-tracker)")
        g.add_argument("--kafka-session-timeout-ms", type=int, metavar="MS", help="group session timeout")
        g.add_argument("--kafka-heartbeat-interval-ms", type=int, metavar="MS", help="group heartbeat interval")
        g.add_argument("--kafka-consumer-buffer-records", type=int, metavar="N",
                       help="fetched, unstored records before fetching pauses (default 50000)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("receiver", help="OTLP/gRPC in, priced span records out to a Kafka topic",
                       description="Receive OTLP/gRPC spans, price the LLM ones and publish them to Kafka. "
                                   "An Export succeeds once the broker acknowledged every record.")
    add_service_flags(p)
    add_kafka_flags(p)
    p.set_defaults(func=_receiver)
    p = sub.add_parser("consumer", help="Kafka topic in, ClickHouse out (consumer group, exactly-once totals)",
                       description="Consume span records from Kafka in a consumer group, insert them into "
                                   "ClickHouse in deduplicated batches and commit offsets after each insert.")
    add_service_flags(p)
    add_kafka_flags(p, consumer=True)
    p.set_defaults(func=_consumer)
    p = sub.add_parser("dlq", help="replay the dead-letter topic onto the spans topic",
                       description="Dead letters (undecodable messages, batches the store refused) stay in the "
                                   "dead-letter topic. Once the cause is fixed, replay produces every letter that "
                                   "now decodes to the spans topic again, for the consumers to store (span identity "
                                   "keeps a span stored before from counting twice); a letter that still does not "
                                   "decode is reported and left. Each run starts where the last one stopped.")
    actions = p.add_subparsers(dest="dlq_command", metavar="ACTION")
    actions.required = True
    q = actions.add_parser("replay", help="produce the letters that decode to the spans topic again")
    q.add_argument("--dry-run", action="store_true", help="read and check the letters, produce and commit nothing")
    add_config_flag(q)
    add_kafka_flags(q, consumer=True)
    q.set_defaults(func=_dlq_replay)


def _start(args: argparse.Namespace, kind: str) -> int:
    settings = settings_from(args)
    log.configure(settings.log_level, settings.log_format)
    logger = log.get_logger("cli")
    if not settings.kafka_bootstrap:
        logger.error(f"{kind} needs --kafka-bootstrap (or LCT_KAFKA_BOOTSTRAP)")
        return 2
    from llm_cost_tracker.services.kafka import Consumer, Receiver  # aiokafka, grpc, chDB: this command only

    return serve(Receiver(settings) if kind == "receiver" else Consumer(settings), logger)


def _receiver(args: argparse.Namespace) -> int:
    return _start(args, "receiver")


def _consumer(args: argparse.Namespace) -> int:
    return _start(args, "consumer")


def _dlq_replay(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from llm_cost_tracker.queue.kafka_dlq import replay_dead_letters  # aiokafka: this command only

    settings = settings_from(args)
    if not settings.kafka_bootstrap:
        print("llm-cost-tracker: dlq replay needs --kafka-bootstrap (or LCT_KAFKA_BOOTSTRAP)", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(replay_dead_letters(settings.kafka, dry_run=args.dry_run))
    except Exception as exc:
        print(f"llm-cost-tracker: dlq replay failed: {type(exc).__name__}: {exc}"[:600], file=sys.stderr)
        return 1
    for source, error in result.undecodable:
        print(f"still undecodable: {source}: {error}", file=sys.stderr)
    for offsets in result.passed:
        print(f"no longer in the dead-letter topic (retention), passed: {offsets}", file=sys.stderr)
    verb = "would send" if args.dry_run else "sent"
    print(f"{result.read} dead letter(s) read from {settings.kafka_dlq_topic}: {verb} {result.sent} "
          f"({result.records} span record(s)) to {settings.kafka_topic}; {len(result.undecodable)} still undecodable",
          file=sys.stderr)
    return 1 if result.undecodable or result.passed else 0


def run_kafka(settings: config.Settings) -> int:
    """``run --kafka-bootstrap``: receiver and consumer in one process, through the broker."""
    from llm_cost_tracker.services.kafka import KafkaAllInOne  # aiokafka, grpc, chDB: this command only

    return serve(KafkaAllInOne(settings), log.get_logger("cli"))
