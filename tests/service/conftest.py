"""Fixtures that run the real service as a child process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_cost_tracker.testing import ServiceProcess


@pytest.fixture
def service_factory(tmp_path) -> Iterator:
    """Start ``llm-cost-tracker run`` processes with extra flags; every one is stopped at the end."""
    started: list[ServiceProcess] = []

    def start(*args: str, subdir: str = "store", env: dict[str, str] | None = None) -> ServiceProcess:
        svc = ServiceProcess(tmp_path / subdir, *args, env=env).start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        if svc.proc is not None and svc.proc.poll() is None:
            svc.stop()
