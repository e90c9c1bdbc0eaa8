"""The resume request a producer sends, built and checked before it leaves the machine. No I/O.

The function is the source of truth: functions/resume_streams/zego_resume/request.py. The CLI is
installed on its own (the function's directory is no package), so it cannot import that module and
checks the same rules, as docs/contract.md documents them, here. tests/cli/test_request_agreement.py
runs both over one table of inputs and fails the moment they disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

MAX_STREAM_IDS_PER_REQUEST = 1000  # the function's documented cap
MAX_STREAM_ID_LENGTH = 256
# docs/contract.md: ^[A-Za-z0-9_-]{1,256}$ — used with fullmatch, because `$` also matches before a
# trailing newline.
STREAM_ID_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_STREAM_ID_LENGTH}}}")
# The function's ceiling for a sequence (head-room below 2**63 for its per-attempt increments).
MAX_SEQUENCE = 9_000_000_000_000_000_000


class RequestRejected(ValueError):
    """The request would be dead-lettered as InvalidRequest by the function. Do not send it."""


def build_request(
    stream_ids: Sequence[str],
    *,
    sequence: int,
    reason: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The request as JSON (docs/contract.md, "A resume request"), duplicates collapsed in order.

    Raises RequestRejected naming the first rule broken; fix the input, never retry.
    """
    if not stream_ids:
        raise RequestRejected("at least one stream id is required")
    if len(stream_ids) > MAX_STREAM_IDS_PER_REQUEST:
        raise RequestRejected(
            f"{len(stream_ids)} stream ids; at most {MAX_STREAM_IDS_PER_REQUEST} per request (split them)"
        )
    for stream_id in stream_ids:
        check_stream_id(stream_id)
    check_sequence(sequence)
    body: dict[str, Any] = {"streamIds": list(dict.fromkeys(stream_ids)), "sequence": sequence}
    if reason is not None:
        body["reason"] = reason
    if request_id is not None:
        body["requestId"] = request_id
    return body


def check_stream_id(stream_id: str) -> None:
    """Raises RequestRejected unless `stream_id` is 1..256 of letters, digits, '-' and '_'."""
    if not stream_id:
        raise RequestRejected("a stream id must not be empty")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise RequestRejected(
            f"stream id {_show(stream_id)} is {len(stream_id)} characters long; "
            f"at most {MAX_STREAM_ID_LENGTH}"
        )
    if not STREAM_ID_PATTERN.fullmatch(stream_id):
        raise RequestRejected(f"stream id {_show(stream_id)} may hold only letters, digits, '-' and '_'")


def check_sequence(sequence: int) -> None:
    """Raises RequestRejected unless 0 <= sequence <= MAX_SEQUENCE."""
    if sequence < 0:
        raise RequestRejected("sequence must not be negative")
    if sequence > MAX_SEQUENCE:
        raise RequestRejected(f"sequence must not exceed {MAX_SEQUENCE}")


def parse_sequence(text: str) -> int:
    """A sequence given as text: ASCII digits only (int() would also take '+1', ' 1' or
    non-ASCII digits).

    Raises RequestRejected; fix the input.
    """
    if not text.isascii() or not text.isdigit():
        raise RequestRejected(f"sequence {_show(text)} is not a non-negative integer (milliseconds)")
    sequence = int(text)
    check_sequence(sequence)
    return sequence


def read_stream_ids(lines: Iterable[str]) -> list[str]:
    """Stream ids from a file, one a line. Blank lines and lines starting with '#' are skipped
    ('#' can never be part of an id); surrounding white space is dropped."""
    stream_ids = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            stream_ids.append(text)
    return stream_ids


def _show(text: str, limit: int = 48) -> str:
    """Quote user input for an error message, cut short: the message must stay one line."""
    return repr(text if len(text) <= limit else text[:limit] + "…")
