"""The CLI checks requests with its own copy of the function's rules (it is installed without the
function's code). These tests run both over one table, so the copy cannot drift. No network."""

from __future__ import annotations

import pytest

from resumectl import request as cli_request
from resumectl.request import RequestRejected, build_request, parse_sequence
from zego_resume.domain import request as function_request
from zego_resume.domain.request import InvalidRequest, parse_resume_request

STREAM_ID_TABLE: list[list[str]] = [
    ["stream-a"],
    ["stream-a", "stream-b", "stream-a"],
    ["A_z-09"],
    ["x" * 256],
    ["x" * 257],
    [""],
    ["bad id"],
    ["a&b=c"],
    ["a%20b"],
    ["stream-a\n"],
    ["\nstream-a"],
    ["stréam"],
    ["\uff53\uff54\uff52\uff45\uff41\uff4d"],  # "stream" in full-width letters
    ["١٢٣"],
    ["ok", "not ok"],
    [],
    [f"s{index}" for index in range(1000)],
    [f"s{index}" for index in range(1001)],
    ["same"] * 1001,
]

SEQUENCE_TABLE: list[str] = [
    "0",
    "1764410000123",
    "9000000000000000000",
    "9000000000000000001",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1.5",
    "1e3",
    "",
    "١٢٣",
    "0x10",
]


@pytest.mark.parametrize("stream_ids", STREAM_ID_TABLE, ids=lambda ids: repr(ids)[:40])
def test_cli_and_function_agree_on_stream_ids(stream_ids: list[str]) -> None:
    # Given the same ids, checked by the function and by the CLI
    function_verdict = _function_stream_ids(stream_ids)
    cli_verdict = _cli_stream_ids(stream_ids)

    # Then both accept (with the same ids after duplicates collapse) or both reject
    assert cli_verdict == function_verdict


@pytest.mark.parametrize("sequence", SEQUENCE_TABLE)
def test_cli_and_function_agree_on_sequences(sequence: str) -> None:
    # Given the same sequence text, checked by the function and by the CLI
    try:
        function_verdict: int | None = parse_resume_request(
            {"streamIds": ["s"], "sequence": sequence}, fallback_sequence=0
        ).sequence
    except InvalidRequest:
        function_verdict = None
    try:
        cli_verdict: int | None = parse_sequence(sequence)
    except RequestRejected:
        cli_verdict = None

    # Then they agree
    assert cli_verdict == function_verdict


def test_the_limits_are_the_functions() -> None:
    assert cli_request.MAX_STREAM_IDS_PER_REQUEST == function_request.MAX_STREAM_IDS_PER_REQUEST
    assert cli_request.MAX_STREAM_ID_LENGTH == function_request.MAX_STREAM_ID_LENGTH
    assert cli_request.MAX_SEQUENCE == function_request.MAX_SEQUENCE


def test_a_built_request_round_trips_through_the_function() -> None:
    # Given a request built by the CLI with every field
    body = build_request(["a", "b", "a"], sequence=7, reason="appeal granted", request_id="case-1")

    # When the function parses it
    parsed = parse_resume_request(body, fallback_sequence=0)

    # Then it reads exactly what the CLI meant
    assert parsed.with_stream_ids(parsed.stream_ids) == body


def _function_stream_ids(stream_ids: list[str]) -> tuple[str, ...] | None:
    try:
        return parse_resume_request({"streamIds": stream_ids}, fallback_sequence=0).stream_ids
    except InvalidRequest:
        return None


def _cli_stream_ids(stream_ids: list[str]) -> tuple[str, ...] | None:
    try:
        return tuple(build_request(stream_ids, sequence=0)["streamIds"])
    except RequestRejected:
        return None
