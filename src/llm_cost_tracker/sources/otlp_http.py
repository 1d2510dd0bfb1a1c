"""The OTLP/HTTP source: ``POST /v1/traces`` in, the same :class:`ExportCore` as gRPC behind it.

What is particular to HTTP happens here and nothing else does: the body's encoding
(``application/x-protobuf`` or ``application/json``, else 415), its ``Content-Encoding`` (``gzip``,
decompressed with a bound so that a gzip bomb stops at the message size limit and gets 413, like a
large plain body), the bearer token and ``lct-tenant`` from the header fields, and the answer in the
request's encoding: 200 with an ``ExportTraceServiceResponse`` (``partial_success`` included), or a
``google.rpc.Status`` with the status each refusal maps to (:data:`HTTP_STATUS`): 401, 400, 413, 503 or
429, the last two with ``Retry-After`` (and a RetryInfo in the Status).

The handler is synchronous: the HTTP listener runs it in its bounded thread pool, so decompression
and decoding never run on the event loop, and the decode memory budget is the one gRPC uses.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from prometheus_client import Counter

from llm_cost_tracker.access.guard import TENANT_HEADER
from llm_cost_tracker.sources.export import (
    BUSY,
    INVALID,
    OVER_BURST,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNAVAILABLE,
    ExportCore,
    Metadata,
    Refused,
)
from llm_cost_tracker.sources.otlp_decode import parse_request
from llm_cost_tracker.sources.otlp_json import parse_json_request

__all__ = ["HTTP_STATUS", "JSON", "PROTOBUF", "TRACES_PATH", "Answer", "OtlpHttpHandler", "TooLarge",
           "gunzip_bounded"]

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
HTTP_STATUS = {UNAUTHENTICATED: 401, INVALID: 400, TOO_LARGE: 413, OVER_BURST: 413, UNAVAILABLE: 503, BUSY: 429}
"""The HTTP status of each kind of refusal (sources/export.py decides which kind)."""
_RPC_CODE = {UNAUTHENTICATED: code_pb2.UNAUTHENTICATED, INVALID: code_pb2.INVALID_ARGUMENT,
             TOO_LARGE: code_pb2.RESOURCE_EXHAUSTED, OVER_BURST: code_pb2.RESOURCE_EXHAUSTED,
             UNAVAILABLE: code_pb2.UNAVAILABLE, BUSY: code_pb2.RESOURCE_EXHAUSTED}


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send back: status, body, its content type and extra header fields."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class TooLarge(ValueError):
    """A compressed body that inflates past the limit."""


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """The gzip ``data`` decompressed, never holding more than ``limit`` + 1 bytes of output.

    Raises:
        TooLarge: the content is over ``limit`` bytes (decompression stops there: a bomb costs ``limit``).
        ValueError: not gzip, corrupt or truncated.
    """
    out: list[bytes] = []
    size = 0
    while data:  # a gzip file may hold several members, one after another (RFC 1952)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit - size + 1)
        except zlib.error:
            raise ValueError("the gzip body is corrupt") from None
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the gzip body inflates past {limit} bytes (--max-message-bytes)")
        if not inflater.eof:
            raise ValueError("the gzip body is truncated")
        out.append(chunk)
        data = inflater.unused_data
    return b"".join(out)


def _encoding(headers: Mapping[str, str]) -> str | None:
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind if kind in (PROTOBUF, JSON) else None


def _metadata(headers: Mapping[str, str]) -> Metadata:
    """The fields the core reads, as gRPC metadata: repeated fields arrive joined with ", " and stay
    visible as such (two tokens are refused; two tenant names become two entries and are refused)."""
    out: list[tuple[str, str | bytes]] = []
    if "authorization" in headers:
        out.append(("authorization", headers["authorization"]))
    if TENANT_HEADER in headers:
        out.extend((TENANT_HEADER, name.strip()) for name in headers[TENANT_HEADER].split(","))
    return out


def _encode(message: Message, encoding: str) -> bytes:
    if encoding == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


class OtlpHttpHandler:
    """``POST /v1/traces``: header fields and body in, :class:`Answer` out.

    Args:
        core: the Export shared with the gRPC receiver.
        max_message_bytes: the largest body accepted, after decompression.
        answered: counts answers by HTTP status (``llm_pipeline_http_exports_total``).
    """

    def __init__(self, core: ExportCore, max_message_bytes: int, answered: Counter | None = None) -> None:
        self.core = core
        self.max_message_bytes = max_message_bytes
        self._answered = answered
        self._lock = threading.Condition()
        self.active = 0
        """Requests being handled now."""

    def __call__(self, headers: Mapping[str, str], body: bytes) -> Answer:
        with self._lock:
            self.active += 1
        try:
            answer = self._answer(headers, body)
        finally:
            with self._lock:
                self.active -= 1
                self._lock.notify_all()
        if self._answered is not None:
            self._answered.labels(status=str(answer.status)).inc()
        return answer

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the requests in progress to be answered (shutdown's grace)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def _answer(self, headers: Mapping[str, str], body: bytes) -> Answer:
        encoding = _encoding(headers)
        if encoding is None:
            return self._status(415, code_pb2.INVALID_ARGUMENT, f"Content-Type must be {PROTOBUF} or {JSON}", JSON)
        coding = headers.get("content-encoding", "").strip().lower()
        if coding not in ("", "identity", "gzip"):
            return self._status(415, code_pb2.INVALID_ARGUMENT, "Content-Encoding must be gzip or none", encoding)
        metadata = _metadata(headers)
        try:
            refused = self.core.gate(metadata)  # before spending anything on the body
            if refused is not None:
                raise refused
            payload = self._inflate(body) if coding == "gzip" else body
            if len(payload) > self.max_message_bytes:
                raise self.core.refusal(TOO_LARGE, f"body over {self.max_message_bytes} bytes (--max-message-bytes)")
            response = self.core.export(payload, metadata, parse_json_request if encoding == JSON else parse_request)
        except Refused as exc:
            return self.refused(exc, encoding)
        return Answer(200, _encode(response, encoding), encoding)

    def _inflate(self, body: bytes) -> bytes:
        try:
            return gunzip_bounded(body, self.max_message_bytes)
        except TooLarge as exc:
            raise self.core.refusal(TOO_LARGE, str(exc)) from None
        except ValueError as exc:
            raise self.core.refusal(INVALID, str(exc)) from None

    def refused(self, refused: Refused, encoding: str) -> Answer:
        """The answer to a refusal: its status, a google.rpc.Status body and, when retryable, Retry-After."""
        status = status_pb2.Status(code=_RPC_CODE[refused.kind], message=refused.message)
        headers: tuple[tuple[str, str], ...] = ()
        if refused.retry_after is not None and refused.kind in (BUSY, UNAVAILABLE):
            delay = max(refused.retry_after, 0.0)
            retry = error_details_pb2.RetryInfo(
                retry_delay=Duration(seconds=int(delay), nanos=int((delay - int(delay)) * 1e9)))
            status.details.add().Pack(retry)
            headers = (("Retry-After", str(max(1, math.ceil(delay)))),)
        return Answer(HTTP_STATUS[refused.kind], _encode(status, encoding), encoding, headers)

    def _status(self, http_status: int, code: int, message: str, encoding: str) -> Answer:
        return Answer(http_status, _encode(status_pb2.Status(code=code, message=message), encoding), encoding)

    def body_refused(self, headers: Mapping[str, str], http_status: int, message: str) -> Answer:
        """The listener's own refusals of a body (413 over the size, 408 too slow), in the request's encoding."""
        encoding = _encoding(headers) or JSON
        if http_status == 413:
            answer = self.refused(self.core.refusal(TOO_LARGE, message + " (--max-message-bytes)"), encoding)
        else:
            answer = self._status(http_status, code_pb2.DEADLINE_EXCEEDED, message, encoding)
        if self._answered is not None:
            self._answered.labels(status=str(answer.status)).inc()
        return answer
