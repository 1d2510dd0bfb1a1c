"""The ports tests give their child processes: free, below the ephemeral range, one share per xdist worker."""

from __future__ import annotations

import socket

from llm_cost_tracker import testing
from llm_cost_tracker.testing import free_port, port_block


def test_each_worker_has_its_own_ports_below_the_ephemeral_range() -> None:
    blocks = [port_block(worker, 2, 32768) for worker in range(2)]
    assert all(len(b) >= 64 and b.start >= 1024 and b.stop <= 32768 for b in blocks)
    assert not set(blocks[0]) & set(blocks[1])
    assert port_block(5, 2, 32768) == blocks[1]  # a worker past the count shares the last block, never above it
    assert port_block(0, 1, 32768) == range(32768 - 8192, 32768)
    assert port_block(0, 1, 1050) == range(0)  # no room below the range: the kernel picks (bind to port 0)


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free when handed out (and still, nothing took it)
    if len(testing._ports):
        assert all(port in testing._ports for port in ports)
        assert max(ports) < testing._ephemeral_low()


def test_a_port_in_use_is_passed_over() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        taken = held.getsockname()[1]
        ports = {free_port() for _ in range(len(testing._ports) + 1)}  # once round the whole block
        assert taken not in ports
