"""A network that misbehaves never leaks the signature, never passes for ZEGO, and never holds an
invocation past its budget: the real handler against small hostile servers on loopback."""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections.abc import Iterator

import pytest

import app
from zego_resume.dispatch import ResumeIncomplete
from zego_resume.runtime import reset_runtime

from .conftest import Local, context, load_event
from .hostile_servers import malformed_headers, redirect_to, serving, trickle, zego_success

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]

SIGNATURE = re.compile(r"Signature=([0-9a-f]{32})")


def _point_zego_at(monkeypatch: pytest.MonkeyPatch, base_url: str, **variables: str) -> None:
    monkeypatch.setenv("ZEGO_API_BASE_URL", base_url)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    reset_runtime()


@pytest.fixture
def lambda_root_logger() -> Iterator[io.StringIO]:
    """The root logger as Lambda's Python runtime sets it up: a handler of the runtime's own on
    the root logger, which every library logger propagates to. Here it writes to a buffer."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # AWS_LAMBDA_LOG_LEVEL=DEBUG: the most an operator can ask for
    yield buffer
    root.removeHandler(handler)
    root.setLevel(previous_level)


def test_a_redirect_is_not_followed_and_is_not_taken_for_success(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a host that redirects every call to another host, which would answer Code 0
    with serving(zego_success()) as elsewhere, serving(redirect_to(f"{elsewhere.base_url}/")) as redirector:
        _point_zego_at(monkeypatch, redirector.base_url)
        # When a decision is resumed
        with pytest.raises(ResumeIncomplete):
            app.lambda_handler(load_event("direct-request.json"), context(timeout_seconds=6))
        # Then the signed URL never reached the other host, and the decision is not reported resumed
        assert redirector.requests
        assert elsewhere.requests == []


@pytest.mark.parametrize(
    "location", ["http://[::1", "http://%zz/", "\x7f://"], ids=["bad-ipv6", "bad-host", "bad-scheme"]
)
def test_a_malformed_location_is_a_transient_failure_not_a_crash(
    local: Local, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    with serving(redirect_to(location)) as redirector:
        _point_zego_at(monkeypatch, redirector.base_url)
        with pytest.raises(ResumeIncomplete):
            app.lambda_handler(load_event("direct-request.json"), context(timeout_seconds=6))
        assert redirector.requests


def test_malformed_headers_never_put_the_signature_in_the_logs(
    local: Local, monkeypatch: pytest.MonkeyPatch, lambda_root_logger: io.StringIO
) -> None:
    # Given a host whose answers carry a malformed header block
    with serving(malformed_headers()) as host:
        _point_zego_at(monkeypatch, host.base_url)
        # When a decision is resumed through it, with the root logger at DEBUG
        app.lambda_handler(load_event("direct-request.json"), context(timeout_seconds=6))
        # Then no signature sent appears in anything the runtime's handler wrote
        sent = [match.group(1) for line in host.requests for match in [SIGNATURE.search(line)] if match]
        assert sent
        logs = lambda_root_logger.getvalue()
        assert all(signature not in logs for signature in sent)
        assert SIGNATURE.search(logs) is None


def test_a_trickling_answer_is_cut_off_and_the_invocation_answers_within_its_budget(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a host that sends one byte every 0.5 s, for ever, and a read timeout that each of
    # those bytes resets (30 s)
    stop = threading.Event()
    try:
        with serving(trickle(0.5, stop)) as host:
            _point_zego_at(monkeypatch, host.base_url, ZEGO_READ_TIMEOUT_SECONDS="30")
            # When an invocation with 6 s to live resumes a decision
            started = time.monotonic()
            with pytest.raises(ResumeIncomplete):
                app.lambda_handler(load_event("direct-request.json"), context(timeout_seconds=6))
            took = time.monotonic() - started
    finally:
        stop.set()
    # Then it answered (handing the decision back) before Lambda would have ended it
    assert took < 6.0
    assert host.requests
