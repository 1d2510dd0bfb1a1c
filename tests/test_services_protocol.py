"""The processes cli serves: one Service protocol, every part declared when built, nothing opened before start()."""

import socket
import threading

import pytest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.pipeline import AllInOne
from llm_cost_tracker.protocols import Service
from llm_cost_tracker.services.kafka import Consumer, KafkaAllInOne, Receiver
from llm_cost_tracker.services.scheduler import SchedulerWorker

BUILDERS = {
    "all-in-one": AllInOne,
    "receiver": Receiver,
    "consumer": Consumer,
    "kafka all-in-one": KafkaAllInOne,
    "scheduler worker": SchedulerWorker,
}


def _free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_built_service_is_not_ready_and_stops_cleanly_before_start(name: str, tmp_path) -> None:
    """Built and never started, a service answers /readyz 'not ready', stops without error, and opened
    nothing: no store directory, no listener, no thread."""
    address = _free_address()
    settings = Settings(data_dir=str(tmp_path / "store"), kafka_bootstrap="127.0.0.1:1", otlp_grpc=address,
                        http=_free_address(), otlp_http="off", sql_http="off")
    threads = set(threading.enumerate())
    service = BUILDERS[name](settings)
    assert isinstance(service, Service)
    ok, reason = service.ready()
    assert not ok and reason
    assert service.stop() in (None, 0)
    assert not (tmp_path / "store").exists()
    assert set(threading.enumerate()) <= threads
    with socket.socket() as sock:
        sock.bind(tuple((address.rsplit(":", 1)[0], int(address.rsplit(":", 1)[1]))))  # still free
