"""What the Kafka producer and consumer share: client options from the Kafka section, topic creation, the
event-loop thread aiokafka runs in, and the key partitioner.

The rest of the service is synchronous (grpc handler threads, the batch writer thread), so each Kafka
component owns an asyncio loop in a daemon thread and hands work to it with
:meth:`LoopThread.submit` (returns a ``concurrent.futures.Future``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    TopicAlreadyExistsError,
    UnknownError,
    UnsupportedVersionError,
)
from aiokafka.partitioner import murmur2

from llm_cost_tracker.config import KafkaConfig

T = TypeVar("T")
_NEEDS_CRAMJAM = ("zstd", "lz4", "snappy")


def client_options(settings: KafkaConfig) -> dict[str, Any]:
    """aiokafka keyword arguments common to producers, consumers and admin clients."""
    s = settings
    options: dict[str, Any] = {
        "bootstrap_servers": [a.strip() for a in s.kafka_bootstrap.split(",") if a.strip()],
        "security_protocol": s.kafka_security_protocol,
        "request_timeout_ms": s.kafka_request_timeout_ms,
        "client_id": "llm-cost-tracker",
    }
    if s.kafka_security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(cafile=s.kafka_ssl_cafile or None,
                                                    certfile=s.kafka_ssl_certfile or None,
                                                    keyfile=s.kafka_ssl_keyfile or None)
    if s.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = s.kafka_sasl_mechanism
        options["sasl_plain_username"] = s.kafka_sasl_username
        options["sasl_plain_password"] = s.kafka_sasl_password
    return options


class IdempotenceRefused(RuntimeError):
    """The brokers answered but refused the idempotent producer: a setting to change, not an outage."""


async def start_producer(producer: Any, settings: KafkaConfig) -> None:
    """Start an aiokafka producer; a broker that refuses idempotence is one clear error naming the flag.

    aiokafka reports a broker without the idempotent producer (no InitProducerId, e.g. tansu) as
    ``UnknownError: [Error -1]`` and a missing IdempotentWrite permission as a cluster authorization
    error: neither says what to do. A failed start closes the producer.
    """
    try:
        await producer.start()
    except BaseException as exc:
        await producer.stop()
        if settings.kafka_idempotence and isinstance(exc, UnknownError | UnsupportedVersionError):
            raise IdempotenceRefused(
                f"the Kafka brokers at {settings.kafka_bootstrap} do not support the idempotent producer (they refused "
                "InitProducerId); pass --no-kafka-idempotence or set LCT_KAFKA_IDEMPOTENCE=false") from exc
        if settings.kafka_idempotence and isinstance(exc, ClusterAuthorizationFailedError):
            raise IdempotenceRefused(
                "the Kafka principal may not use the idempotent producer (grant it IdempotentWrite on the cluster), "
                "or pass --no-kafka-idempotence / set LCT_KAFKA_IDEMPOTENCE=false") from exc
        raise


def compression_type(settings: KafkaConfig) -> str | None:
    """The aiokafka ``compression_type`` for the setting, or a clear error if its codec is missing."""
    name = settings.kafka_compression
    if name == "none":
        return None
    if name in _NEEDS_CRAMJAM:
        from aiokafka import codec

        if not codec.has_zstd():
            raise RuntimeError(f"kafka_compression={name} needs the cramjam package "
                               "(pip install 'aiokafka[zstd]'), or choose gzip or none")
    return name


async def ensure_topics(settings: KafkaConfig, topics: list[str]) -> list[str]:
    """Create the missing ``topics`` with ``kafka_partitions`` partitions; returns those created.

    Does nothing when ``kafka_partitions`` is 0 (topics are managed elsewhere).
    """
    if settings.kafka_partitions <= 0:
        return []
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        missing = [t for t in topics if t not in set(await admin.list_topics())]
        created = []
        for topic in missing:
            try:
                await admin.create_topics([NewTopic(topic, settings.kafka_partitions,
                                                    settings.kafka_replication_factor)])
                created.append(topic)
            except TopicAlreadyExistsError:
                pass  # another replica created it first
        return created
    finally:
        await admin.close()


class LoopThread:
    """An asyncio event loop running in its own daemon thread.

    Args:
        name: the thread's name.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coro`` on the loop; its result arrives through the returned future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (after the caller has closed its clients) and join the thread."""
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


_SEED = np.uint32(0x9747B28C)
_M = np.uint32(0x5BD1E995)


def partitions_for_keys(keys: list[bytes], partitions: int) -> np.ndarray:
    """Kafka's default partition (murmur2 of the key, as the Java client and aiokafka compute it).

    Vectorised over the 32-byte keys (hex trace ids); other lengths go through aiokafka's
    ``murmur2`` one by one. Returns an int64 array of partition numbers in ``range(partitions)``.
    """
    n = len(keys)
    out = np.empty(n, dtype=np.int64)
    fixed = [i for i, k in enumerate(keys) if len(k) == 32]
    if fixed:
        words = np.frombuffer(b"".join(keys[i] for i in fixed), dtype="<u4").reshape(len(fixed), 8)
        with np.errstate(over="ignore"):
            h = np.full(len(fixed), _SEED ^ np.uint32(32), dtype=np.uint32)
            for col in range(8):
                k = words[:, col] * _M
                k ^= k >> np.uint32(24)
                k *= _M
                h *= _M
                h ^= k
            h ^= h >> np.uint32(13)
            h *= _M
            h ^= h >> np.uint32(15)
        out[fixed] = (h & np.uint32(0x7FFFFFFF)).astype(np.int64) % partitions
    if len(fixed) != n:
        fixed_set = set(fixed)
        for i, key in enumerate(keys):
            if i not in fixed_set:
                out[i] = (murmur2(key) & 0x7FFFFFFF) % partitions
    return out
