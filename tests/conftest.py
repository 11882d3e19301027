"""Fixtures shared across test folders."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration import prom


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prom.PrometheusServer]:
    """A Prometheus holding 30 minutes of every provider's scenarios, ending 2 minutes ago."""
    folder = tmp_path_factory.mktemp("prometheus")
    end = (time.time() // 60) * 60 - 120
    start = prom.backfill(folder, end=end)
    server = prom.start_prometheus(folder, start=start, end=end)
    yield server
    server.stop()
