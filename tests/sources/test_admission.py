"""Admission before decoding: the memory budget and what an Export gets when it stays full."""

from __future__ import annotations

import threading

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.sources.admission import MemoryBudget, decode_cost
from llm_cost_tracker.sources.otlp_decode import DecodeLimits
from llm_cost_tracker.sources.otlp_grpc import OtlpGrpcServer, TraceExportHandler
from llm_cost_tracker.testing import RecordingPublisher, genai_attributes, make_request, make_span


def test_budget_admits_up_to_its_capacity_and_one_oversized_request_alone() -> None:
    """Holders never exceed the capacity, except a single request bigger than all of it, which runs alone."""
    budget = MemoryBudget(100)
    assert budget.acquire(60, 0)
    assert not budget.acquire(60, 0.05)
    assert budget.acquire(40, 0)
    budget.release(60)
    budget.release(40)
    assert budget.acquire(500, 0)  # alone: admitted
    assert not budget.acquire(1, 0.05)
    budget.release(500)
    assert budget.in_use == 0


def test_a_waiting_request_gets_in_when_memory_is_released() -> None:
    """A request waiting for its share proceeds as soon as a holder releases."""
    budget = MemoryBudget(100)
    budget.acquire(100, 0)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire(50, 30)))
    waiter.start()
    budget.release(100)
    waiter.join(30)
    assert got == [True]


def test_decode_cost_covers_the_measured_worst_shape() -> None:
    """The estimate is at least the measured peak of the worst shape (11.2 bytes per message byte)."""
    assert decode_cost(13 * 2**20) >= 11.2 * 13 * 2**20


def test_export_gets_resource_exhausted_with_retry_info_when_the_budget_stays_full() -> None:
    """An Export that cannot get its share of decode memory is told to retry later, not decoded."""
    budget = MemoryBudget(decode_cost(1))
    budget.acquire(budget.capacity, 0)  # all of it held, as by a big request in progress
    publisher = RecordingPublisher()
    handler = TraceExportHandler([], publisher, DecodeLimits(), Metrics(), memory=budget, memory_wait=0.2)
    server = OtlpGrpcServer("127.0.0.1:0", handler, 1 << 20, 2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.Export(make_request([make_span(genai_attributes())]), timeout=10)
            budget.release(budget.capacity)
            stub.Export(make_request([make_span(genai_attributes())]), timeout=10)
    finally:
        server.stop(0)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(info.value.trailing_metadata())
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.seconds >= 1
    assert len(publisher.records) == 1
    assert budget.in_use == 0
