"""`zego-resume send`: one validated resume request to the queue, an EventBridge bus, or a
one-time schedule — over loopback HTTP to moto, as to AWS."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from devkit.template import moderation_event_pattern
from resumectl.cli import main
from zego_resume.domain.request import parse_resume_request
from zegosim.aws import Stack, client, drain

pytestmark = pytest.mark.enable_socket


def test_send_to_queue_puts_one_request_the_function_accepts(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two streams, a duplicate, and a decision time
    argv = ["send", "--queue-url", stack.queue_url, "--stream-id", "stream-a", "--stream-id", "stream-b"]
    argv += ["--stream-id", "stream-a", "--sequence", "1764410000123", "--reason", "appeal granted"]
    argv += ["--request-id", "case-8812", "--json"]

    # When it is sent to the resume queue
    exit_code = main(argv)

    # Then exactly one message arrives, whose body the function's own validation accepts unchanged
    assert exit_code == 0
    messages = drain(stack.queue_url)
    assert len(messages) == 1
    body = json.loads(messages[0]["body"])
    assert body == {
        "streamIds": ["stream-a", "stream-b"],
        "sequence": 1764410000123,
        "reason": "appeal granted",
        "requestId": "case-8812",
    }
    request = parse_resume_request(body, fallback_sequence=0)
    assert request.stream_ids == ("stream-a", "stream-b")
    # And the JSON output names the message that was sent
    output = json.loads(capsys.readouterr().out)
    assert output["target"] == "queue"
    assert output["messageId"] == messages[0]["messageId"]
    assert output["request"] == body


def test_send_without_sequence_uses_now_in_milliseconds(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no --sequence
    before = int(datetime.now(UTC).timestamp() * 1000)

    # When a request is sent
    exit_code = main(["send", "--queue-url", stack.queue_url, "--stream-id", "s1"])

    # Then its sequence is the send time, and the human output says where it went
    after = int(datetime.now(UTC).timestamp() * 1000)
    assert exit_code == 0
    body = json.loads(drain(stack.queue_url)[0]["body"])
    assert before <= body["sequence"] <= after
    assert f"sent to {stack.queue_url}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("stream_id", "complaint"),
    [
        ("bad id", "may hold only letters, digits"),
        ("a&b=c", "may hold only letters, digits"),
        ("x" * 257, "at most 256"),
        ("", "must not be empty"),
    ],
)
def test_send_rejects_an_invalid_stream_id_and_sends_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str], stream_id: str, complaint: str
) -> None:
    # Given a valid id and an invalid one
    argv = ["send", "--queue-url", stack.queue_url, "--stream-id", "ok", "--stream-id", stream_id]

    # When it is sent
    exit_code = main(argv)

    # Then it is a usage error on one line of stderr, and the queue stays empty
    assert exit_code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert complaint in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err
    assert drain(stack.queue_url) == []


def test_send_rejects_more_ids_than_the_function_takes(stack: Stack, tmp_path: Path) -> None:
    # Given a file of 1,001 distinct ids
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("".join(f"stream-{index}\n" for index in range(1001)))

    # When it is sent
    exit_code = main(["send", "--queue-url", stack.queue_url, "--stream-ids-file", str(ids_file)])

    # Then nothing is sent
    assert exit_code == 2
    assert drain(stack.queue_url) == []


@pytest.mark.parametrize("sequence", ["-1", "1.5", "12a", "9000000000000000001"])
def test_send_rejects_a_bad_sequence(stack: Stack, capsys: pytest.CaptureFixture[str], sequence: str) -> None:
    # When a sequence that the function would reject is given
    exit_code = main(["send", "--queue-url", stack.queue_url, "--stream-id", "s", "--sequence", sequence])

    # Then it is a usage error naming the option, and nothing is sent
    assert exit_code == 2
    assert "--sequence" in capsys.readouterr().err
    assert drain(stack.queue_url) == []


def test_send_reads_stream_ids_from_a_file(stack: Stack, tmp_path: Path) -> None:
    # Given a file with one id a line, a comment, a blank line and stray white space
    ids_file = tmp_path / "streams.txt"
    ids_file.write_text("# lifted after review\nstream-a\n\n  stream-b  \r\nstream-a\n")

    # When it is sent
    exit_code = main(["send", "--queue-url", stack.queue_url, "--stream-ids-file", str(ids_file)])

    # Then the request holds each id once, in file order
    assert exit_code == 0
    (message,) = drain(stack.queue_url)
    assert json.loads(message["body"])["streamIds"] == ["stream-a", "stream-b"]


def test_send_with_a_missing_ids_file_is_a_usage_error(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the ids file does not exist
    exit_code = main(["send", "--queue-url", stack.queue_url, "--stream-ids-file", str(tmp_path / "nope")])

    # Then the error names the file
    assert exit_code == 2
    assert "No such file" in capsys.readouterr().err


def test_send_to_a_missing_queue_names_the_aws_error_code(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a queue URL that does not exist
    missing = stack.queue_url + "-missing"

    # When a request is sent there
    exit_code = main(["send", "--queue-url", missing, "--stream-id", "s1"])

    # Then the command fails with the AWS error code, on one line, without a traceback
    assert exit_code == 1
    err = capsys.readouterr().err
    assert "AWS.SimpleQueueService.NonExistentQueue" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_send_to_an_event_bus_reaches_the_queue_as_an_envelope(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a bus with the template's rule (default parameters) routing to the resume queue
    events = client("events")
    bus = f"moderation-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    pattern = moderation_event_pattern()
    events.put_rule(Name="to-resume-queue", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="to-resume-queue", EventBusName=bus, Targets=[{"Id": "q", "Arn": stack.queue_arn}]
    )

    # When a request is published on the bus with the default source and detail-type
    exit_code = main(
        ["send", "--event-bus", bus, "--stream-id", "stream-a", "--sequence", "1764410000123", "--json"]
    )

    # Then PutEvents accepted it, and the queue got the envelope with the request as its detail
    assert exit_code == 0
    output = json.loads(capsys.readouterr().out)
    assert output["target"] == "eventBus"
    assert output["eventId"]
    assert output["matchingRules"] == ["to-resume-queue"]
    (message,) = drain(stack.queue_url)
    envelope = json.loads(message["body"])
    assert envelope["source"] in pattern["source"]
    assert envelope["detail-type"] in pattern["detail-type"]
    assert envelope["detail"] == {"streamIds": ["stream-a"], "sequence": 1764410000123}


def test_send_to_a_missing_event_bus_fails_with_the_error_code(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When the bus does not exist
    exit_code = main(["send", "--event-bus", "no-such-bus", "--stream-id", "s1"])

    # Then the command fails naming EventBridge's error code
    assert exit_code == 1
    assert "ResourceNotFoundException" in capsys.readouterr().err


def test_send_at_creates_a_one_time_schedule_that_deletes_itself(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a ban that ends tomorrow
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    name = f"ban-end-{uuid.uuid4().hex[:8]}"
    role = "arn:aws:iam::123456789012:role/zego-resume-scheduler"

    # When its end is scheduled, delivered to the resume queue
    exit_code = main(
        [
            "send",
            "--at",
            at.isoformat(),
            "--target-arn",
            stack.queue_arn,
            "--role-arn",
            role,
            "--schedule-name",
            name,
            "--stream-id",
            "stream-a",
            "--reason",
            "timed ban over",
            "--json",
        ]
    )

    # Then the schedule fires once at that time (UTC), with the request as input, its sequence
    # being the ban's end
    assert exit_code == 0
    output = json.loads(capsys.readouterr().out)
    schedule = client("scheduler").get_schedule(Name=name, GroupName="default")
    assert output["scheduleArn"] == schedule["Arn"]
    assert schedule["ScheduleExpression"] == f"at({at:%Y-%m-%dT%H:%M:%S})"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == stack.queue_arn
    assert schedule["Target"]["RoleArn"] == role
    assert json.loads(schedule["Target"]["Input"]) == {
        "streamIds": ["stream-a"],
        "sequence": int(at.timestamp() * 1000),
        "reason": "timed ban over",
    }


def test_send_at_reads_an_offset_and_keeps_an_explicit_sequence(aws: dict[str, str]) -> None:
    # Given a time written with a +08:00 offset, and an explicit sequence
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    in_beijing = at.astimezone(timezone(timedelta(hours=8)))
    name = f"ban-end-{uuid.uuid4().hex[:8]}"

    # When it is scheduled
    exit_code = main(
        [
            "send",
            "--at",
            in_beijing.isoformat(),
            "--target-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:resume-streams",
            "--role-arn",
            "arn:aws:iam::123456789012:role/r",
            "--schedule-name",
            name,
            "--stream-id",
            "s1",
            "--sequence",
            "42",
        ]
    )

    # Then the expression is in UTC, and the given sequence is kept
    assert exit_code == 0
    schedule = client("scheduler").get_schedule(Name=name)
    assert schedule["ScheduleExpression"] == f"at({at:%Y-%m-%dT%H:%M:%S})"
    assert json.loads(schedule["Target"]["Input"])["sequence"] == 42


def test_send_at_rejects_a_time_in_the_past(aws: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given a name for a schedule that should never exist
    name = f"too-late-{uuid.uuid4().hex[:8]}"

    # When a time in the past is given
    exit_code = main(
        [
            "send",
            "--at",
            "2020-01-01T00:00:00Z",
            "--target-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:resume-streams",
            "--role-arn",
            "arn:aws:iam::123456789012:role/r",
            "--schedule-name",
            name,
            "--stream-id",
            "s1",
        ]
    )

    # Then it is a usage error, and no schedule was created
    assert exit_code == 2
    assert "in the past" in capsys.readouterr().err
    names = [s["Name"] for s in client("scheduler").list_schedules()["Schedules"]]
    assert name not in names


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ([], "--at needs --target-arn and --role-arn"),
        (["--target-arn", "not-an-arn", "--role-arn", "arn:aws:iam::1:role/r"], "is not an ARN"),
    ],
)
def test_send_at_needs_a_target_and_a_role(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str], extra: list[str], complaint: str
) -> None:
    # When --at lacks what Scheduler needs
    exit_code = main(["send", "--at", "2099-01-01T00:00:00Z", "--stream-id", "s1", *extra])

    # Then it is a usage error saying what is missing
    assert exit_code == 2
    assert complaint in capsys.readouterr().err


def test_send_takes_exactly_one_destination(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # When both a queue and a bus are given
    exit_code = main(["send", "--queue-url", stack.queue_url, "--event-bus", "b", "--stream-id", "s1"])

    # Then argparse refuses, and nothing is sent
    assert exit_code == 2
    assert "not allowed with" in capsys.readouterr().err
    assert drain(stack.queue_url) == []


def test_send_rejects_options_of_another_destination(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an EventBridge option is given for a queue send
    exit_code = main(["send", "--queue-url", stack.queue_url, "--stream-id", "s1", "--source", "x"])

    # Then it is refused rather than silently ignored
    assert exit_code == 2
    assert "apply only with --event-bus" in capsys.readouterr().err
    assert drain(stack.queue_url) == []
