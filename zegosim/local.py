"""A local stack that stays up: `make local` (or `.venv/bin/python -m zegosim.local`).

Starts moto server (SQS, Secrets Manager, EventBridge, ...) and the ZEGO emulator on 127.0.0.1,
creates the stack's resources as template.yaml does with its default parameters (the resume queue
and its DLQ with a redrive policy, the ZEGO secret, the EventBridge rule on the bus with the
template's sources and detail-types), prints `export` lines for a shell, and serves until Ctrl-C or
SIGTERM. With --with-function it also runs the function on the queue, as Lambda's SQS event source
mapping does (zegosim.lambda_runtime), its logs on stderr.

stdout carries only shell lines: comments and `export NAME=value`, ending with `# ready` once
everything is up, so `eval "$(...)"` or `. file` takes them. Everything else goes to stderr.
No secret is printed: the ZEGO ServerSecret is only in (moto's) Secrets Manager, and the
emulator's admin token is in a file readable by you alone (ZEGO_ADMIN_TOKEN_FILE).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, redirect_stdout
from pathlib import Path
from types import FrameType
from typing import Any

from devkit.template import (
    default_deployment,
    default_function_environment,
    fleet_shape,
    moderation_event_pattern,
)

from .aws import MotoServer, Stack, client, create_rate_ledger, create_stack
from .lambda_runtime import SqsPoller
from .zego import ZegoEmulator

PROG = "make local"
STACK_NAME = "zego-stream-resume"  # the template's default stack name (devkit.template.STACK_NAME)
DEFAULT_APP_ID = 1234567890
READY = "# ready"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    # Before anything is printed: whoever reads the exports may stop us at once, and cleanly.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ExitStack() as stack:
        try:
            _check_free(args.moto_port)  # moto's server thread would die, and start() wait forever
        except OSError as error:
            return _cannot_listen("moto", args.moto_port, error)
        moto = MotoServer(port=args.moto_port)
        moto.start()
        stack.callback(moto.stop)
        environment = moto.environment()
        resources = _create_resources(args, environment)
        secret = json.loads(
            client("secretsmanager", environment).get_secret_value(SecretId=resources.stack.secret_id)[
                "SecretString"
            ]
        )
        try:
            zego = ZegoEmulator(int(secret["AppId"]), secret["ServerSecret"], port=args.zego_port)
            zego.start()
        except OSError as error:
            return _cannot_listen("the ZEGO emulator", args.zego_port, error)
        stack.callback(zego.stop)
        token_file = _write_private(stack, zego.admin_token)
        function_environment = _function_environment(resources, zego.base_url)
        exports = {
            "LOCAL_STACK_PID": str(os.getpid()),  # `kill "$LOCAL_STACK_PID"` stops it
            **environment,
            "RESUME_QUEUE_URL": resources.stack.queue_url,
            "RESUME_QUEUE_ARN": resources.stack.queue_arn,
            "DEAD_LETTER_QUEUE_ARN": resources.stack.dead_letter_queue_arn,
            "EVENT_BUS_NAME": resources.bus,
            "EVENT_RULE_NAME": resources.rule,
            "ZEGO_ADMIN_TOKEN_FILE": str(token_file),
            **function_environment,
        }
        print(
            f"# zego-stream-resume local stack, pid {os.getpid()}: stop it with Ctrl-C or kill {os.getpid()}"
        )
        print(f"# moto {moto.endpoint_url}, ZEGO emulator {zego.base_url} (AppId {secret['AppId']})")
        for name, value in exports.items():
            print(f"export {name}={shlex.quote(value)}")
        if args.with_function:
            poller = _start_function(stack, resources.stack, environment, function_environment, stopping)
            print(f"# the function polls {resources.stack.queue_url}; its logs go to stderr")
        else:
            poller = None
        print(READY, flush=True)
        say("local stack up; Ctrl-C or SIGTERM stops it")
        stopping.wait()
        say("stopping")
        if poller is not None:
            poller.join(timeout=30)
    say("stopped")
    return 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    deployment = default_deployment(ZegoSecretName=f"{STACK_NAME}/zego")
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the stack's AWS resources (moto) and the ZEGO emulator on 127.0.0.1 until "
        "Ctrl-C or SIGTERM, printing `export` lines for a shell on stdout. "
        'LOCAL_ARGS="..." passes options through make.',
    )
    parser.add_argument(
        "--with-function",
        action="store_true",
        help="also run the function on the resume queue, as Lambda's SQS event source mapping does",
    )
    parser.add_argument(
        "--app-id",
        type=int,
        default=DEFAULT_APP_ID,
        metavar="N",
        help=f"the ZEGO AppId (default {DEFAULT_APP_ID})",
    )
    parser.add_argument(
        "--moto-port",
        type=_port,
        default=0,
        metavar="N",
        help="moto's port on 127.0.0.1 (default 0: any free one)",
    )
    parser.add_argument(
        "--zego-port",
        type=_port,
        default=0,
        metavar="N",
        help="the ZEGO emulator's port on 127.0.0.1 (default 0: any free one)",
    )
    parser.add_argument(
        "--max-receive-count",
        type=_at_least(1),
        default=fleet_shape(deployment).max_receive_count,
        metavar="N",
        help="receives before SQS moves a message to the DLQ (default: the template's, %(default)s)",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=_at_least(0),
        default=int(deployment.resource("ResumeQueue")["Properties"]["VisibilityTimeout"]),
        metavar="SECONDS",
        help="the resume queue's visibility timeout (default: the template's, %(default)s)",
    )
    return parser.parse_args(argv)


class _Resources:
    def __init__(self, stack: Stack, bus: str, rule: str, extra_environment: dict[str, str]) -> None:
        self.stack = stack
        self.bus = bus
        self.rule = rule
        self.extra_environment = extra_environment


def _create_resources(args: argparse.Namespace, environment: dict[str, str]) -> _Resources:
    stack = create_stack(
        app_id=args.app_id,
        server_secret=secrets.token_hex(16),
        environment=environment,
        name=STACK_NAME,
        max_receive_count=args.max_receive_count,
        visibility_timeout=args.visibility_timeout,
    )
    deployment = default_deployment(ZegoSecretName=f"{STACK_NAME}/zego")
    bus = str(deployment.resource("ModerationEventBus")["Properties"]["Name"])
    rule = str(deployment.resource("ModerationEventsRule")["Properties"]["Name"])
    events = client("events", environment)
    if bus != "default":
        events.create_event_bus(Name=bus)
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(moderation_event_pattern()))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "resume-queue", "Arn": stack.queue_arn}])
    # The fleet's rate ledger, as the template makes it: every instance run against this stack
    # shares ZEGO's budget through it.
    ledger = create_rate_ledger(f"{STACK_NAME}-zego-rate-ledger", environment)
    return _Resources(stack, bus, rule, {"ZEGO_RATE_LEDGER_TABLE": ledger})


def _function_environment(resources: _Resources, zego_url: str) -> dict[str, str]:
    """The template's variables for its default parameters, with this stack's resources."""
    environment = {
        name: value
        for name, value in default_function_environment().items()
        if not (value.startswith("<") and value.endswith(">"))  # deployed-only placeholders
    }
    environment.update(resources.stack.function_environment(zego_url))
    environment.update(resources.extra_environment)
    return environment


def _start_function(
    stack: ExitStack,
    resources: Stack,
    environment: dict[str, str],
    function_environment: dict[str, str],
    stopping: threading.Event,
) -> threading.Thread:
    handler = _load_function({**environment, **function_environment})
    poller = SqsPoller(
        handler,
        resources.queue_url,
        resources.queue_arn,
        batch_size=10,
        function_timeout=60.0,
        environment=environment,
    )

    def run() -> None:
        while not stopping.is_set():
            try:
                poller.poll_once(wait_seconds=1)
            except Exception as error:  # moto going away at shutdown, a bug: say it, keep serving
                if stopping.is_set():
                    return
                say(f"poller: {type(error).__name__}: {error}")
                stopping.wait(1)

    thread = threading.Thread(target=run, name="sqs-poller", daemon=True)
    thread.start()
    stack.callback(stopping.set)
    return thread


def _load_function(environment: Mapping[str, str]) -> Callable[[dict[str, Any], Any], Any]:
    """The real handler, imported with its environment, every log line going to stderr."""
    os.environ.update(environment)
    import app
    from zego_resume.observability import logger

    logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]

    def handler(event: dict[str, Any], context: Any) -> Any:
        with redirect_stdout(sys.stderr):  # EMF metrics are printed: stdout is for the exports
            return app.lambda_handler(event, context)

    return handler


def _write_private(stack: ExitStack, text: str) -> Path:
    """A file only this user can read, removed at exit."""
    descriptor, name = tempfile.mkstemp(prefix="zego-admin-token-")
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    path = Path(name)
    stack.callback(path.unlink, missing_ok=True)
    return path


def _check_free(port: int) -> None:
    """Raises OSError when 127.0.0.1:`port` cannot be listened on (0: any port will do)."""
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds
            probe.bind(("127.0.0.1", port))


def _cannot_listen(what: str, port: int, error: OSError) -> int:
    reason = (error.strerror or str(error)).lower()
    hint = " (choose another port, or 0 for any free one)" if port else ""
    print(f"{PROG}: {what} cannot listen on 127.0.0.1:{port}: {reason}{hint}", file=sys.stderr)
    return 1


def _port(text: str) -> int:
    value = _at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0..65535)")
    return value


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    return parse


def say(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
