"""What the function's logging lets through: no ZEGO signature, whatever a library logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from zego_resume.observability import RedactSignatures, logger, protect_log_handlers

SIGNED_URL = "http://rtc-api.zego.im/?Action=ResumeRTCStreams&Signature=43e5cfcca828314675f91b001390566a&x=1"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RedactSignatures())
    library = logging.getLogger("tests.a_library")
    library.addHandler(handler)
    library.propagate = False
    yield library, buffer
    library.removeHandler(handler)


def test_a_signature_in_a_message_or_its_arguments_is_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    library, buffer = captured
    library.warning("Failed to parse headers (url=%s): %s", SIGNED_URL, "defects")
    library.warning(f"plain {SIGNED_URL}")
    text = buffer.getvalue()
    assert "43e5cfcca828314675f91b001390566a" not in text
    assert text.count("Signature=<redacted>") == 2
    assert "Failed to parse headers" in text


def test_a_signature_in_a_traceback_is_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    library, buffer = captured
    try:
        raise ValueError(f"bad answer from {SIGNED_URL}")
    except ValueError:
        library.exception("call failed")
    text = buffer.getvalue()
    assert "43e5cfcca828314675f91b001390566a" not in text
    assert "ValueError" in text
    assert "Signature=<redacted>" in text


def test_urllib3_logs_nothing_below_an_error() -> None:
    # urllib3 puts the full request URL in its WARNING about malformed headers
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.ERROR


def test_the_redaction_is_put_on_the_root_powertools_and_last_resort_handlers() -> None:
    root_handler = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(root_handler)
    try:
        protect_log_handlers()
        protect_log_handlers()  # idempotent
        for handler in (root_handler, logger.registered_handler, logging.lastResort):
            assert handler is not None
            assert sum(isinstance(f, RedactSignatures) for f in handler.filters) == 1
    finally:
        logging.getLogger().removeHandler(root_handler)
