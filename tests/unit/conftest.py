"""Every unit test runs without network, with empty Powertools metrics and no cached runtime."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket

from zego_resume import runtime as runtime_module
from zego_resume.observability import metrics


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(autouse=True)
def _empty_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture(autouse=True)
def _no_cached_runtime() -> Iterator[None]:
    runtime_module.reset_runtime()
    yield
    runtime_module.reset_runtime()
