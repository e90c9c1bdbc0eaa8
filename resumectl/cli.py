"""`zego-resume`: inspect and redrive the dead-letter queue, send resume decisions.

Exit codes: 0 success; 1 the command ran and failed (an AWS error, named by its code, messages
that could not be moved or deleted, an event no rule would deliver); 2 bad arguments (nothing was
sent); 130 interrupted. Every error is one line on stderr; --json puts a machine-readable result on
stdout. Text from a queue is shown with its non-printable characters escaped (resumectl.terminal).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from resumectl import dead_letter_queue as dlq
from resumectl import publish, routing
from resumectl.aws import REGION_RULE, Clients, describe
from resumectl.aws import error_code as _error_code
from resumectl.journal import Journal, JournalError, default_directory
from resumectl.request import (
    MAX_STREAM_IDS_PER_REQUEST,
    RequestRejected,
    build_request,
    parse_sequence,
    read_stream_ids,
)
from resumectl.terminal import printable, safe_json

PROG = "zego-resume"
DEFAULT_PEEK_SECONDS = 30
MAX_VISIBILITY_SECONDS = 43_200  # SQS's ceiling for a visibility timeout (12 hours)
DEFAULT_SAMPLES = 3
DEFAULT_MOVE_TASK_WAIT_SECONDS = 60

Handler = Callable[[argparse.Namespace, Clients], int]


class UsageError(Exception):
    """A bad argument found after parsing (an invalid stream id, a time in the past, ...)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with every usage error on one line (argparse itself prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) and usage errors (2): a return value, for tests
        return _exit_code(stop)
    handler: Handler = args.handler
    try:
        return handler(args, Clients())
    except UsageError as error:
        return _usage_error(args.parser, str(error))
    except dlq.QueueMissing as error:
        return _fail(str(error))
    except dlq.NotTheSourceQueue as error:
        return _usage_error(args.parser, f"{error}; nothing moved")
    except JournalError as error:
        return _fail(f"{error}; nothing more moved (--journal DIR names another directory)")
    except (ClientError, BotoCoreError) as error:
        return _fail(describe(error))
    except publish.EventRejected as error:
        return _fail(f"{error.code}: PutEvents did not accept the event: {error.message}")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Operate the resume-streams function: inspect and redrive its dead-letter queue, "
        "and send decisions that lift publishing bans on ZEGOCLOUD streams. AWS settings come "
        "from the usual places (AWS_PROFILE, AWS_ENDPOINT_URL, credentials, ...). The region: "
        f"{REGION_RULE}. Against the local stack: eval the exports `make local` prints.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{dlq,send}", required=True)
    machine = _Parser(add_help=False)
    machine.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    dlq_parser = commands.add_parser("dlq", help="inspect or redrive the dead-letter queue")
    dlq_commands = dlq_parser.add_subparsers(dest="dlq_command", metavar="{list,redrive}", required=True)
    _add_dlq_list(dlq_commands, machine)
    _add_dlq_redrive(dlq_commands, machine)
    _add_send(commands, machine)
    return parser


def _add_dlq_list(commands: Any, machine: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "list",
        parents=[machine],
        help="count dead letters by ErrorCode, with samples",
        description="Count the DLQ's messages by ErrorCode (and ErrorReason) and show sample bodies, "
        "without consuming them. Listing receives every message, which hides it from other "
        "consumers for at most --peek-seconds; the messages are made visible again as soon as the "
        "count is done. Each sample shows its body, ErrorReason and ErrorMessage; characters that "
        "are not printable (terminal escape sequences among them) are shown escaped (\\x1b, ...).",
    )
    parser.add_argument(
        "--dlq-url", required=True, type=_queue_url, metavar="URL", help="the dead-letter queue's URL"
    )
    parser.add_argument(
        "--samples",
        type=_count(0),
        default=DEFAULT_SAMPLES,
        metavar="N",
        help=f"sample bodies per ErrorCode, cut to {dlq.SAMPLE_CHARS} characters (default {DEFAULT_SAMPLES})",
    )
    _add_peek_seconds(parser, "how long each message may stay hidden while listing")
    parser.add_argument(
        "--limit",
        type=_count(1),
        default=dlq.DEFAULT_PEEK_LIMIT,
        metavar="N",
        help=f"stop after N messages (default {dlq.DEFAULT_PEEK_LIMIT}); counts then cover those seen",
    )
    parser.set_defaults(handler=_dlq_list, parser=parser)


def _add_dlq_redrive(commands: Any, machine: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "redrive",
        parents=[machine],
        help="send dead letters back to the source queue for a replay",
        description="Move the DLQ's messages back to the source queue, where the function replays "
        "them (each body is a resume request holding only the stream ids that failed). "
        "--queue-url must be the DLQ's source queue: its RedrivePolicy must name the DLQ, or "
        "nothing moves (exit 2). InvalidRequest letters are left in the DLQ unless you pass "
        "--include-invalid (their bodies fail validation again; fix them first); --error-code "
        "moves only the codes named. Letters are copied one by one: received, their bodies sent to "
        "the queue, deleted from the DLQ only once the send succeeded. Each send is written to a "
        "journal (--journal) before the delete, so that a redrive whose delete failed (exit 1) "
        "never sends those letters twice: the next redrive only deletes them. With "
        "--include-invalid, no --error-code and no --max, SQS's StartMessageMoveTask moves them "
        "instead, where the service offers it (and unless --force-copy). Exit 1 if any message "
        "could not be moved or deleted. A redrive handles at most the letters the DLQ held when it "
        "started: those that come back meanwhile (the function dead-letters some again at once) wait "
        "for the next one.",
    )
    parser.add_argument(
        "--dlq-url", required=True, type=_queue_url, metavar="URL", help="the dead-letter queue's URL"
    )
    parser.add_argument(
        "--queue-url", required=True, type=_queue_url, metavar="URL", help="the DLQ's source queue's URL"
    )
    parser.add_argument(
        "--error-code",
        action="append",
        dest="error_codes",
        metavar="CODE",
        help=f"move only letters with this ErrorCode (repeat for more; {dlq.NO_ERROR_CODE} for "
        "letters without one, moved by SQS's own redrive policy)",
    )
    parser.add_argument(
        "--include-invalid",
        action="store_true",
        help=f"move {dlq.INVALID_REQUEST} letters too, whatever --error-code says (naming it there "
        "does the same)",
    )
    parser.add_argument(
        "--journal",
        type=Path,
        metavar="DIR",
        help="where sends are recorded until their delete succeeds "
        "(default $XDG_STATE_HOME/zego-resume/redrive, else ~/.local/state/zego-resume/redrive)",
    )
    parser.add_argument(
        "--max",
        type=_count(1),
        metavar="N",
        help="move at most N messages (a move task always moves all, so this copies)",
    )
    parser.add_argument("--dry-run", action="store_true", help="count what would move; move nothing")
    parser.add_argument(
        "--force-copy", action="store_true", help="copy message by message even where a move task works"
    )
    _add_peek_seconds(parser, "how long a message being copied (or counted) stays hidden")
    parser.add_argument(
        "--wait-seconds",
        type=_count(0),
        default=DEFAULT_MOVE_TASK_WAIT_SECONDS,
        metavar="N",
        help=f"how long to wait for a move task to finish (default {DEFAULT_MOVE_TASK_WAIT_SECONDS})",
    )
    parser.set_defaults(handler=_dlq_redrive, parser=parser)


def _add_send(commands: Any, machine: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "send",
        parents=[machine],
        help="send a resume request (queue, EventBridge bus, or a schedule)",
        description="Send one resume request: to the function's queue (--queue-url), as an "
        "EventBridge event (--event-bus), or as a one-time EventBridge Scheduler schedule that "
        "delivers it at a given time (--at, for a timed ban's end). The request is validated "
        "first; an invalid one is never sent (exit 2).",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--queue-url", type=_queue_url, metavar="URL", help="send the request to this SQS queue"
    )
    target.add_argument("--event-bus", metavar="NAME", help="publish the request on this EventBridge bus")
    target.add_argument(
        "--at",
        type=_time,
        metavar="ISO8601",
        help="schedule the request for this time (UTC unless it carries an offset); needs "
        "--target-arn and --role-arn",
    )
    ids = parser.add_mutually_exclusive_group(required=True)
    ids.add_argument(
        "--stream-id",
        action="append",
        dest="stream_ids",
        metavar="ID",
        help=f"a stream to resume; repeat for more (1..{MAX_STREAM_IDS_PER_REQUEST})",
    )
    ids.add_argument(
        "--stream-ids-file",
        metavar="PATH",
        help="read stream ids from a file, one a line ('-' for stdin; blank and '#' lines skipped)",
    )
    parser.add_argument(
        "--sequence",
        type=_sequence,
        metavar="N",
        help="the decision time in ms (default: now; with --at, the --at time)",
    )
    parser.add_argument("--reason", metavar="TEXT", help="why the ban is lifted (logged, kept in the DLQ)")
    parser.add_argument("--request-id", metavar="TEXT", help="your reference for this decision")
    event = parser.add_argument_group(
        "with --event-bus",
        "The defaults are what the stack's rule matches (template.yaml: ModerationEventSources "
        f"{','.join(routing.EVENT_SOURCES)}; ModerationDetailTypes {','.join(routing.DETAIL_TYPES)}). "
        "Before publishing, the bus's enabled rules are checked: when none matches the event, "
        "EventBridge would drop it silently, so nothing is sent and the exit is 1 (also when the "
        "rules cannot be read); --force publishes all the same, with a warning.",
    )
    event.add_argument("--source", metavar="S", help=f"event source (default {routing.DEFAULT_EVENT_SOURCE})")
    event.add_argument(
        "--detail-type", metavar="T", help=f"event detail-type (default {routing.DEFAULT_DETAIL_TYPE})"
    )
    event.add_argument(
        "--force",
        action="store_true",
        help="publish even when no rule on the bus matches the event, or the rules cannot be read",
    )
    schedule = parser.add_argument_group("with --at")
    schedule.add_argument("--target-arn", metavar="ARN", help="the function's or its queue's ARN")
    schedule.add_argument("--role-arn", metavar="ARN", help="the role Scheduler assumes to reach the target")
    schedule.add_argument("--schedule-name", metavar="NAME", help="default: zego-resume-<time>-<random>")
    schedule.add_argument(
        "--group", metavar="NAME", help=f"schedule group (default {publish.DEFAULT_SCHEDULE_GROUP})"
    )
    parser.set_defaults(handler=_send, parser=parser)


# --- dlq list ---------------------------------------------------------------------------------


DLQ_ROLE = "the DLQ (--dlq-url)"
SOURCE_ROLE = "the source queue (--queue-url)"


def _dlq_list(args: argparse.Namespace, clients: Clients) -> int:
    sqs = clients.get("sqs")
    approximate = dlq.approximate_messages(sqs, args.dlq_url, role=DLQ_ROLE)  # also: the queue exists
    with dlq.peek(sqs, args.dlq_url, hide_seconds=args.peek_seconds, limit=args.limit) as peeked:
        counts = dlq.count_by_error_code(peeked.messages, samples=args.samples)
    _warn_still_hidden(peeked.unrestored, args.peek_seconds)
    if args.json:
        _print_json(
            {
                "dlqUrl": args.dlq_url,
                "approximateNumberOfMessages": approximate,
                "seen": len(peeked.messages),
                "complete": peeked.exhausted,
                "stillHidden": peeked.unrestored,
                "errorCodes": [
                    {
                        "errorCode": group.error_code,
                        "count": group.count,
                        "errorReasons": group.reasons,
                        "samples": [
                            {
                                "body": sample.body,
                                "errorReason": sample.error_reason,
                                "errorMessage": sample.error_message,
                            }
                            for sample in group.samples
                        ],
                    }
                    for group in counts
                ],
            }
        )
        return 0
    print(f"DLQ {args.dlq_url}")
    print(f"ApproximateNumberOfMessages: {approximate}")
    print(f"seen: {len(peeked.messages)} (hidden for at most {args.peek_seconds}s, then made visible again)")
    if not peeked.exhausted:
        print(f"stopped at --limit {args.limit}: the counts cover the messages seen")
    if not counts:
        print("no messages")
        return 0
    codes = [printable(group.error_code) for group in counts]
    width = max(len("ErrorCode"), *(len(code) for code in codes))
    print()
    print(f"{'ErrorCode':<{width}}  count")
    for code, group in zip(codes, counts, strict=True):
        print(f"{code:<{width}}  {group.count}")
        for reason, count in sorted(group.reasons.items(), key=lambda item: (-item[1], item[0])):
            print(f"  ErrorReason {printable(reason)}: {count}")
        for sample in group.samples:
            print(f"  sample: {printable(sample.body)}")
            if sample.error_reason:
                print(f"    ErrorReason: {printable(sample.error_reason)}")
            if sample.error_message:
                print(f"    ErrorMessage: {printable(sample.error_message)}")
    return 0


# --- dlq redrive ------------------------------------------------------------------------------


def _dlq_redrive(args: argparse.Namespace, clients: Clients) -> int:
    sqs = clients.get("sqs")
    # Both queues up front, before anything moves: they exist, and the target is the DLQ's source.
    dlq_arn = dlq.queue_arn(sqs, args.dlq_url, role=DLQ_ROLE)
    queue_arn = dlq.check_source_queue(
        sqs, queue_url=args.queue_url, dead_letter_queue_arn=dlq_arn, role=SOURCE_ROLE
    )
    select = _selection(args)
    if args.dry_run:
        return _dry_run(args, sqs, select)
    redrive: dlq.Redrive | None = None
    fell_back_because = (
        "--force-copy"
        if args.force_copy
        else "--max"
        if args.max
        else "--error-code"
        if args.error_codes
        else f"{dlq.INVALID_REQUEST} letters are left (a move task would move them)"
        if not args.include_invalid
        else None
    )
    if fell_back_because is None:
        try:
            # One attempt: an "unsupported" answer should fall back at once (moto's is a 500,
            # which botocore would retry with back-off), and any other refusal is reported with
            # nothing moved, so rerunning is safe.
            handle = dlq.start_move_task(
                clients.get("sqs", attempts=1), source_arn=dlq_arn, destination_arn=queue_arn
            )
        except dlq.MoveTaskUnsupported as unsupported:
            fell_back_because = f"StartMessageMoveTask unsupported here, it answered {unsupported}"
        else:
            redrive = dlq.follow_move_task(
                sqs, source_arn=dlq_arn, task_handle=handle, wait_seconds=args.wait_seconds
            )
    journal: Journal | None = None
    if redrive is None:
        journal = Journal(args.journal or default_directory(), args.dlq_url)
        redrive = dlq.copy_back(
            sqs,
            dead_letter_queue_url=args.dlq_url,
            queue_url=args.queue_url,
            hide_seconds=args.peek_seconds,
            limit=args.max,
            journal=journal,
            # What the DLQ holds now: letters that arrive meanwhile wait for the next redrive.
            budget=dlq.approximate_messages(sqs, args.dlq_url, role=DLQ_ROLE),
            select=select,
            fell_back_because=fell_back_because,
        )
    _warn_still_hidden(redrive.unrestored, args.peek_seconds)
    failed = redrive.failures.total()
    if args.json:
        _print_json(
            {
                "dlqUrl": args.dlq_url,
                "queueUrl": args.queue_url,
                "dryRun": False,
                "method": redrive.method,
                "moved": redrive.moved,
                "failed": failed,
                "failures": dict(redrive.failures),
                "skipped": dict(redrive.skipped),
                "alreadySent": redrive.already_sent,
                "sentNotDeleted": redrive.sent_not_deleted,
                "journal": str(journal.path) if journal is not None else None,
                "taskHandle": redrive.task_handle,
                "taskStatus": redrive.task_status,
                "fellBackBecause": redrive.fell_back_because,
            }
        )
    else:
        _print_redrive(args, redrive)
    _say_skipped(redrive.skipped, args)
    status = 0
    if failed:
        codes = ", ".join(f"{code}: {count}" for code, count in redrive.failures.most_common())
        status = _fail(f"{failed} message(s) not moved ({codes}); they stay in the DLQ")
    if redrive.sent_not_deleted:
        assert journal is not None  # only a copy deletes
        status = _fail(
            f"{redrive.sent_not_deleted} message(s) were sent back but could not be deleted from the "
            f"DLQ; {journal.path} records them, and the next redrive deletes them without sending "
            "them again (run it with the same --journal)"
        )
    return status


def _selection(args: argparse.Namespace) -> Callable[[dlq.SeenMessage], bool]:
    """Which letters go back: the --error-code ones (all without it); InvalidRequest letters
    only when named, or with --include-invalid."""
    wanted = set(args.error_codes or ())

    def select(message: dlq.SeenMessage) -> bool:
        code = message.error_code
        if code == dlq.INVALID_REQUEST:
            return bool(args.include_invalid) or code in wanted
        return not wanted or code in wanted

    return select


def _say_skipped(skipped: Counter[str], args: argparse.Namespace) -> None:
    """Where the letters left in the DLQ are said, and how to move them too (stderr: not the result)."""
    invalid = skipped.get(dlq.INVALID_REQUEST, 0)
    if invalid:
        print(
            f"skipped {invalid} {dlq.INVALID_REQUEST} letter(s): their bodies fail validation again "
            "(see `zego-resume dlq list`); fix and send them anew, or pass --include-invalid to move "
            "them as they are",
            file=sys.stderr,
        )
    others = {code: count for code, count in skipped.items() if code != dlq.INVALID_REQUEST}
    if others:
        listed = ", ".join(f"{printable(code)}: {count}" for code, count in sorted(others.items()))
        print(f"left {sum(others.values())} letter(s) not named by --error-code ({listed})", file=sys.stderr)


def _print_redrive(args: argparse.Namespace, redrive: dlq.Redrive) -> None:
    if redrive.method == "move-task":
        print(
            f"SQS move task {redrive.task_handle}: {redrive.task_status}, "
            f"~{redrive.moved} message(s) moved from {args.dlq_url} to {args.queue_url}"
        )
        if redrive.task_status == "RUNNING":
            print("still running: see `aws sqs list-message-move-tasks` for its progress")
        return
    how = f" (copied: {redrive.fell_back_because})" if redrive.fell_back_because else " (copied)"
    print(f"moved {redrive.moved} message(s) from {args.dlq_url} to {args.queue_url}{how}")
    if redrive.already_sent:
        print(
            f"deleted {redrive.already_sent} letter(s) from the DLQ that an earlier redrive had sent "
            "back already (not sent again)"
        )


def _dry_run(args: argparse.Namespace, sqs: Any, select: Callable[[dlq.SeenMessage], bool]) -> int:
    approximate = dlq.approximate_messages(sqs, args.dlq_url, role=DLQ_ROLE)
    limit = args.max or dlq.DEFAULT_PEEK_LIMIT
    with dlq.peek(sqs, args.dlq_url, hide_seconds=args.peek_seconds, limit=dlq.DEFAULT_PEEK_LIMIT) as peeked:
        chosen = [message for message in peeked.messages if select(message)]
        skipped = Counter(message.error_code for message in peeked.messages if not select(message))
    would_move = min(len(chosen), limit)
    _warn_still_hidden(peeked.unrestored, args.peek_seconds)
    if args.json:
        _print_json(
            {
                "dlqUrl": args.dlq_url,
                "queueUrl": args.queue_url,
                "dryRun": True,
                "approximateNumberOfMessages": approximate,
                "wouldMove": would_move,
                "skipped": dict(skipped),
                "moved": 0,
            }
        )
    else:
        print(
            f"dry run: would move {would_move} message(s) from {args.dlq_url} to {args.queue_url}; "
            "nothing moved"
        )
    _say_skipped(skipped, args)
    return 0


# --- send -------------------------------------------------------------------------------------


def _send(args: argparse.Namespace, clients: Clients) -> int:
    _check_target_options(args)
    stream_ids = (
        args.stream_ids if args.stream_ids is not None else _read_stream_ids_file(args.stream_ids_file)
    )
    at: datetime | None = args.at
    if at is not None and at <= datetime.now(UTC):
        raise UsageError(f"--at {at:%Y-%m-%dT%H:%M:%SZ} is in the past")
    sequence = args.sequence
    if sequence is None:
        sequence = publish.milliseconds(at) if at is not None else time.time_ns() // 1_000_000
    try:
        request = build_request(stream_ids, sequence=sequence, reason=args.reason, request_id=args.request_id)
    except RequestRejected as error:
        raise UsageError(str(error)) from error

    result: dict[str, Any] = {"request": request}
    if args.queue_url:
        try:
            message_id = publish.send_to_queue(clients.get("sqs"), queue_url=args.queue_url, request=request)
        except ClientError as error:
            if _error_code(error) in dlq.NON_EXISTENT_QUEUE_CODES:
                raise dlq.QueueMissing("the queue (--queue-url)", args.queue_url, error) from error
            raise
        result |= {"target": "queue", "queueUrl": args.queue_url, "messageId": message_id}
        summary = f"sent to {args.queue_url} (MessageId {message_id})"
    elif args.event_bus:
        source = args.source or routing.DEFAULT_EVENT_SOURCE
        detail_type = args.detail_type or routing.DEFAULT_DETAIL_TYPE
        events = clients.get("events")
        matching = _check_route(events, args, source=source, detail_type=detail_type, request=request)
        if matching is None:
            return 1
        event_id = publish.put_event(
            events,
            event_bus=args.event_bus,
            request=request,
            source=source,
            detail_type=detail_type,
        )
        result |= {
            "target": "eventBus",
            "eventBus": args.event_bus,
            "source": source,
            "detailType": detail_type,
            "eventId": event_id,
            "matchingRules": matching,
        }
        summary = f"published on bus {args.event_bus} as {source}/{detail_type} (EventId {event_id})"
    else:
        assert at is not None  # argparse: exactly one of --queue-url, --event-bus, --at
        group = args.group or publish.DEFAULT_SCHEDULE_GROUP
        name = args.schedule_name or publish.default_schedule_name(at)
        schedule_arn = publish.create_schedule(
            clients.get("scheduler"),
            at=at,
            target_arn=args.target_arn,
            role_arn=args.role_arn,
            name=name,
            group=group,
            request=request,
        )
        result |= {
            "target": "schedule",
            "scheduleArn": schedule_arn,
            "scheduleName": name,
            "group": group,
            "at": f"{at:%Y-%m-%dT%H:%M:%SZ}",
            "targetArn": args.target_arn,
        }
        summary = f"scheduled {schedule_arn} for {at:%Y-%m-%dT%H:%M:%SZ}, target {args.target_arn}"

    if args.json:
        _print_json(result)
    else:
        count = len(request["streamIds"])
        print(f"resume request for {count} stream id(s), sequence {request['sequence']}: {summary}")
    return 0


def _check_route(
    events: Any, args: argparse.Namespace, *, source: str, detail_type: str, request: dict[str, Any]
) -> list[str] | None:
    """The rules on the bus that would deliver the event; None (after one line on stderr) when
    the event must not be sent: no rule matches, or the rules cannot be read, and no --force."""
    where = f"bus {args.event_bus}, source {source}, detail-type {detail_type}"
    try:
        route = routing.check_route(
            events, bus=args.event_bus, source=source, detail_type=detail_type, detail=request
        )
    except ClientError as error:
        if _error_code(error) == "ResourceNotFoundException":
            raise  # no such bus: PutEvents would refuse it too
        problem = f"cannot read the rules of bus {args.event_bus} ({describe(error)})"
        if not args.force:
            _fail(f"{problem}; nothing sent (--force publishes without the check)")
            return None
        _warn(f"{problem}; publishing anyway (--force)")
        return []
    if route.delivered:
        return list(route.matching)
    problem = (
        f"no enabled rule on {where} matches: EventBridge would drop the event "
        f"({route.rules_seen} enabled rule(s) with a pattern checked, {route.how})"
    )
    if not args.force:
        _fail(f"{problem}; nothing sent (--force publishes it anyway)")
        return None
    _warn(f"{problem}; publishing anyway (--force)")
    return []


def _check_target_options(args: argparse.Namespace) -> None:
    """Options that belong to one target are an error with another: they would be ignored."""
    if not args.event_bus and (args.source is not None or args.detail_type is not None or args.force):
        raise UsageError("--source, --detail-type and --force apply only with --event-bus")
    schedule_options = (args.target_arn, args.role_arn, args.schedule_name, args.group)
    if args.at is None:
        if any(option is not None for option in schedule_options):
            raise UsageError("--target-arn, --role-arn, --schedule-name and --group apply only with --at")
        return
    if not args.target_arn or not args.role_arn:
        raise UsageError("--at needs --target-arn and --role-arn")
    for option, value in (("--target-arn", args.target_arn), ("--role-arn", args.role_arn)):
        if not value.startswith("arn:"):
            raise UsageError(f"{option} {value!r} is not an ARN")
    for option, value in (("--schedule-name", args.schedule_name), ("--group", args.group)):
        if value is not None and not publish.SCHEDULER_NAME_PATTERN.fullmatch(value):
            raise UsageError(f"{option} {value!r} must be 1..64 of letters, digits, '.', '-' and '_'")


def _read_stream_ids_file(path: str) -> list[str]:
    try:
        if path == "-":
            return read_stream_ids(sys.stdin)
        with Path(path).open(encoding="utf-8") as lines:
            return read_stream_ids(lines)
    except OSError as error:
        raise UsageError(f"--stream-ids-file {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise UsageError(f"--stream-ids-file {path}: not UTF-8 text") from error


# --- argument types and output ----------------------------------------------------------------


def _queue_url(text: str) -> str:
    """An SQS queue URL: http(s)://host/path, printable ASCII, checked before any call."""
    parts = urlsplit(text) if text.isascii() and text.isprintable() and " " not in text else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.path in ("", "/"):
        raise argparse.ArgumentTypeError(
            f"not a URL: '{printable(text)}' (a queue URL is https://host/account/name)"
        )
    return text


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    return parse


def _add_peek_seconds(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--peek-seconds",
        type=_seconds,
        default=DEFAULT_PEEK_SECONDS,
        metavar="S",
        help=f"{what} (1..{MAX_VISIBILITY_SECONDS}, default {DEFAULT_PEEK_SECONDS})",
    )


def _seconds(text: str) -> int:
    value = _count(1)(text)
    if value > MAX_VISIBILITY_SECONDS:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_VISIBILITY_SECONDS} (12 hours)")
    return value


def _sequence(text: str) -> int:
    try:
        return parse_sequence(text)
    except RequestRejected as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _time(text: str) -> datetime:
    try:
        return publish.parse_at(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2030-01-31T18:00:00Z"
        ) from None


def _warn_still_hidden(count: int, seconds: int) -> None:
    if count:
        print(
            f"{PROG}: warning: {count} message(s) could not be made visible again at once; "
            f"SQS shows them again within {seconds}s",
            file=sys.stderr,
        )


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {printable(message)}", file=sys.stderr)


def _print_json(value: dict[str, Any]) -> None:
    print(safe_json(value))


def _fail(message: str) -> int:
    print(f"{PROG}: error: {printable(message)}", file=sys.stderr)
    return 1


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    try:
        parser.error(message)
    except SystemExit as stop:
        return _exit_code(stop)


def _exit_code(stop: SystemExit) -> int:
    if stop.code is None:
        return 0
    return stop.code if isinstance(stop.code, int) else 1


if __name__ == "__main__":
    raise SystemExit(main())
