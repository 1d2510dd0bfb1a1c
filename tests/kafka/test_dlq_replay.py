"""Dead letters that decode go back to the spans topic once, without their dead-letter headers; the others stay."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from llm_cost_tracker.config import Settings
from llm_cost_tracker.queue import kafka_codec
from llm_cost_tracker.queue.kafka_client import LoopThread, ensure_topics
from llm_cost_tracker.queue.kafka_dlq import replay_dead_letters
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import TokenUsage

GARBAGE = b"\x08\x96\x01garbage\xff"


def _letter(source: str, error: str = "ProgrammingError: type mismatch") -> list[tuple[str, bytes]]:
    return [(kafka_codec.ERROR_HEADER, error.encode()), (kafka_codec.SOURCE_HEADER, source.encode())]


def _dead_letters(settings: Settings, letters: list[tuple[bytes, list[tuple[str, bytes]]]]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for value, headers in letters:
                await producer.send_and_wait(settings.kafka_dlq_topic, value, key=b"trace", headers=headers)
        finally:
            await producer.stop()

    asyncio.run(go())


def _topic(settings: Settings, topic: str, expect: int) -> list[Any]:
    """The messages of ``topic`` from its start, once ``expect`` arrived (or 10 s passed)."""
    async def go() -> list[Any]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            out: list[Any] = []
            for _ in range(40):
                data = await consumer.getmany(timeout_ms=250)
                out.extend(m for messages in data.values() for m in messages)
                if len(out) >= expect:
                    break
            return out
        finally:
            await consumer.stop()

    return asyncio.run(go())


def _settings(kafka_settings: Settings) -> Settings:
    settings = kafka_settings.replace(kafka_partitions=1)
    loop = LoopThread("admin")
    loop.call(ensure_topics(settings.kafka, [settings.kafka_topic, settings.kafka_dlq_topic]))
    loop.stop()
    return settings


def test_letters_that_decode_go_back_once_and_the_rest_stay(kafka_settings: Settings) -> None:
    """Three refused spans and one undecodable message in the DLQ: the three go to the spans topic with their
    key, value and other headers but no lct-error/lct-source; the garbage is reported by where it came from.
    A second run has nothing to read: the group's offset moved past all four."""
    settings = _settings(kafka_settings)
    records = [span_record(provider="openai", request_model="gpt-4o", usage=TokenUsage(10, 2), cost_pusd=5 + i)
               for i in range(3)]
    _dead_letters(settings, [(kafka_codec.encode(r), _letter(f"{settings.kafka_topic}/0/{i}"))
                             for i, r in enumerate(records)]
                  + [(GARBAGE, _letter(f"{settings.kafka_topic}/0/7", "undecodable"))])
    result = asyncio.run(replay_dead_letters(settings.kafka, join_timeout=30))
    assert (result.read, result.sent, result.records) == (4, 3, 3)
    assert [source for source, _ in result.undecodable] == [f"{settings.kafka_topic}/0/7"]
    back = _topic(settings, settings.kafka_topic, 3)
    assert [m.value for m in back] == [kafka_codec.encode(r) for r in records]
    assert all(m.key == b"trace" and not m.headers for m in back)
    assert [r.span_id for r in kafka_codec.decode_message(back[0].value, back[0].headers)] == [records[0].span_id]
    again = asyncio.run(replay_dead_letters(settings.kafka, join_timeout=30))
    assert (again.read, again.sent, again.undecodable) == (0, 0, [])
    assert len(_topic(settings, settings.kafka_topic, 4)) == 3


def test_a_dry_run_produces_and_commits_nothing(kafka_settings: Settings) -> None:
    """A dry run reads and checks the letters; the real run after it still finds and sends them."""
    settings = _settings(kafka_settings)
    batch = [span_record(cost_pusd=1), span_record(cost_pusd=2)]
    value = kafka_codec.encode_batch([kafka_codec.encode(r) for r in batch])
    _dead_letters(settings, [(value, [*kafka_codec.batch_headers(2), *_letter(f"{settings.kafka_topic}/0/3")])])
    dry = asyncio.run(replay_dead_letters(settings.kafka, dry_run=True, join_timeout=30))
    assert (dry.read, dry.sent, dry.records) == (1, 1, 2)
    assert _topic(settings, settings.kafka_topic, 1) == []
    real = asyncio.run(replay_dead_letters(settings.kafka, join_timeout=30))
    assert (real.read, real.sent, real.records) == (1, 1, 2)
    [back] = _topic(settings, settings.kafka_topic, 1)
    assert back.value == value and list(back.headers) == kafka_codec.batch_headers(2)


def test_cli_exit_codes(kafka_settings: Settings, monkeypatch: Any, capsys: Any) -> None:
    """``dlq replay`` exits 1 when a letter still does not decode (and says which), 0 when all went back."""
    from llm_cost_tracker.cli import main

    settings = _settings(kafka_settings)
    _dead_letters(settings, [(GARBAGE, _letter("spans/0/1", "undecodable"))])
    for name, value in (("LCT_KAFKA_IDEMPOTENCE", "false"), ("LCT_KAFKA_SESSION_TIMEOUT_MS", "1000"),
                        ("LCT_KAFKA_HEARTBEAT_INTERVAL_MS", "200")):
        monkeypatch.setenv(name, value)
    flags = ["--kafka-bootstrap", settings.kafka_bootstrap]
    assert main(["dlq", "replay", *flags]) == 1
    err = capsys.readouterr().err
    assert "still undecodable: spans/0/1" in err and "1 dead letter(s) read" in err
    _dead_letters(settings, [(kafka_codec.encode(span_record(cost_pusd=3)), _letter("spans/0/2"))])
    assert main(["dlq", "replay", *flags]) == 0
    assert "1 dead letter(s) read from llm-cost.spans.dlq: sent 1 (1 span record(s))" in capsys.readouterr().err


def test_a_letter_a_fetch_skipped_is_read_again_not_committed_past(kafka_settings: Settings,
                                                                   monkeypatch: Any) -> None:
    """The consumer's first fetch leaves out its second letter (what a client or broker fault did to a spans
    message once, at the log's end): the replay notices the hole, fetches again from it, and every letter goes
    back, in order; nothing is named as passed."""
    settings = _settings(kafka_settings)
    records = [span_record(provider="openai", request_model="gpt-4o", usage=TokenUsage(10, 2), cost_pusd=5 + i)
               for i in range(6)]
    _dead_letters(settings, [(kafka_codec.encode(r), _letter(f"{settings.kafka_topic}/0/{i}"))
                             for i, r in enumerate(records)])
    fetch = AIOKafkaConsumer.getmany
    dropped: list[int] = []

    async def skipping(self: AIOKafkaConsumer, *partitions: Any, **kwargs: Any) -> Any:
        data = await fetch(self, *partitions, **kwargs)
        for tp, messages in data.items():
            if not dropped and len(messages) >= 2:
                dropped.append(messages[1].offset)
                data[tp] = [messages[0], *messages[2:]]
        return data

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", skipping)
    result = asyncio.run(replay_dead_letters(settings.kafka, join_timeout=30))
    monkeypatch.undo()
    assert dropped == [1]
    assert (result.read, result.sent, result.undecodable, result.passed) == (6, 6, [], [])
    back = _topic(settings, settings.kafka_topic, 6)
    assert [m.value for m in back] == [kafka_codec.encode(r) for r in records]
