"""`make local` (python -m zegosim.local): started as a process, its exports read as a shell would,
the CLI used against it, stopped by a signal."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devkit.template import default_deployment, moderation_event_pattern
from zegosim.aws import client

pytestmark = pytest.mark.enable_socket

PYTHON = Path(sys.executable)
ZEGO_RESUME = PYTHON.parent / "zego-resume"
ROOT = Path(__file__).resolve().parents[2]
# Start-up takes about 3 s on a quiet machine, stopping under 2 s: limits of 20x and 15x that.
START_SECONDS = 60
STOP_SECONDS = 30


@dataclass
class LocalStack:
    process: subprocess.Popen[str]
    exports: dict[str, str]
    stdout: list[str]
    stderr: list[str] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """A shell after `. exports`: the developer's AWS settings replaced by the stack's."""
        base = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        return {**base, **self.exports}

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - this virtualenv's console script
            [str(ZEGO_RESUME), *argv],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=STOP_SECONDS)
        assert self.process.stderr is not None
        self.stderr.append(self.process.stderr.read())
        return code


def _start(*args: str) -> Iterator[LocalStack]:
    process = subprocess.Popen(  # noqa: S603 - this virtualenv's python
        [str(PYTHON), "-m", "zegosim.local", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={name: value for name, value in os.environ.items() if not name.startswith("AWS_")},
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    stdout: list[str] = []
    deadline = time.monotonic() + START_SECONDS
    try:
        while not stdout or stdout[-1] != "# ready":
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"exited early ({process.wait()}): {process.stderr.read()}"  # type: ignore[union-attr]
            stdout.append(line)
        exports = {}
        for line in stdout:
            assert line.startswith(("# ", "export ")), f"not a shell line: {line!r}"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                exports[name] = value  # every value here is shell-safe as it stands
        yield LocalStack(process, exports, stdout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


@pytest.fixture
def local_stack() -> Iterator[LocalStack]:
    yield from _start()


@pytest.fixture
def local_stack_with_function() -> Iterator[LocalStack]:
    yield from _start("--with-function")


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_the_local_stack_prints_exports_the_cli_works_with_and_stops_on_ctrl_c(
    local_stack: LocalStack,
) -> None:
    exports = local_stack.exports
    # Then the exports name the endpoint (on loopback), both region variables alike, dummy
    # credentials, the queues, the bus, and the function's environment
    assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert exports["AWS_REGION"] == exports["AWS_DEFAULT_REGION"]
    assert exports["AWS_ACCESS_KEY_ID"]
    assert exports["AWS_SECRET_ACCESS_KEY"]
    for name in ("RESUME_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "ZEGO_API_BASE_URL"):
        assert exports[name].startswith("http://127.0.0.1:"), name
    # the stack's own moderation bus, as the template names it
    assert (
        exports["EVENT_BUS_NAME"] == default_deployment().resource("ModerationEventBus")["Properties"]["Name"]
    )
    assert exports["ZEGO_RATE_LEDGER_TABLE"]  # the fleet's rate ledger, as the template makes it
    assert exports["LOCAL_STACK_PID"] == str(local_stack.process.pid)
    for name in (
        "ZEGO_SECRET_ID",
        "MAX_RECEIVE_COUNT",
        "ZEGO_MAX_CALLS_PER_SECOND",
        "POWERTOOLS_SERVICE_NAME",
    ):
        assert exports[name], name
    sqs = client("sqs", exports)
    events = client("events", exports)

    # And the resources are the template's: the DLQ behind the queue, the rule with its pattern
    policy = sqs.get_queue_attributes(QueueUrl=exports["RESUME_QUEUE_URL"], AttributeNames=["RedrivePolicy"])
    assert (
        json.loads(policy["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
        == exports["DEAD_LETTER_QUEUE_ARN"]
    )
    rule = events.describe_rule(Name=exports["EVENT_RULE_NAME"], EventBusName=exports["EVENT_BUS_NAME"])
    assert json.loads(rule["EventPattern"]) == moderation_event_pattern()

    # And no secret was printed
    secret = json.loads(
        client("secretsmanager", exports).get_secret_value(SecretId=exports["ZEGO_SECRET_ID"])["SecretString"]
    )
    assert secret["ServerSecret"] not in "\n".join(local_stack.stdout)

    # When the documented producer command is run in that shell
    sent = local_stack.cli(
        "send", "--event-bus", exports["EVENT_BUS_NAME"], "--stream-id", "stream-x", "--json"
    )

    # Then the rule delivers it to the resume queue
    assert sent.returncode == 0, sent.stderr
    messages = sqs.receive_message(QueueUrl=exports["RESUME_QUEUE_URL"], WaitTimeSeconds=5)["Messages"]
    assert json.loads(messages[0]["Body"])["detail"]["streamIds"] == ["stream-x"]

    # And the operator commands work there too
    listed = local_stack.cli("dlq", "list", "--dlq-url", exports["DEAD_LETTER_QUEUE_URL"])
    assert listed.returncode == 0, listed.stderr
    assert "no messages" in listed.stdout

    # When it gets Ctrl-C
    code = local_stack.stop(signal.SIGINT)

    # Then it stops cleanly
    assert code == 0
    assert "Traceback" not in local_stack.stderr[-1]
    assert secret["ServerSecret"] not in local_stack.stderr[-1]


def test_with_function_the_local_stack_resumes_what_is_sent_and_stops_on_sigterm(
    local_stack_with_function: LocalStack,
) -> None:
    local = local_stack_with_function
    exports = local.exports
    token = Path(exports["ZEGO_ADMIN_TOKEN_FILE"]).read_text()
    assert Path(exports["ZEGO_ADMIN_TOKEN_FILE"]).stat().st_mode & 0o077 == 0  # yours alone

    def zego_state() -> dict[str, int]:
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{exports['ZEGO_API_BASE_URL']}/_emulator/state", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback http
            return dict(json.load(answer))

    # When a request is sent to the queue with the CLI, and a body the function refuses beside it
    sent = local.cli("send", "--queue-url", exports["RESUME_QUEUE_URL"], "--stream-id", "stream-y")
    assert sent.returncode == 0, sent.stderr
    client("sqs", exports).send_message(QueueUrl=exports["RESUME_QUEUE_URL"], MessageBody="not json")

    # Then the function resumes the stream at the emulator, and dead-letters the bad body
    assert _until(lambda: zego_state()["resumedStreamIds"] == 1, 60), zego_state()
    listed: list[subprocess.CompletedProcess[str]] = []

    def dead_lettered() -> bool:
        listed.append(local.cli("dlq", "list", "--dlq-url", exports["DEAD_LETTER_QUEUE_URL"], "--json"))
        return json.loads(listed[-1].stdout or "{}").get("seen") == 1

    assert _until(dead_lettered, 60), listed[-1].stderr
    assert json.loads(listed[-1].stdout)["errorCodes"][0]["errorCode"] == "InvalidRequest"

    # When it gets SIGTERM
    code = local.stop(signal.SIGTERM)

    # Then it stops cleanly, and takes the token file with it
    assert code == 0
    assert "Traceback" not in local.stderr[-1]
    assert not Path(exports["ZEGO_ADMIN_TOKEN_FILE"]).exists()


def test_a_busy_port_is_one_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        completed = subprocess.run(  # noqa: S603 - this virtualenv's python
            [str(PYTHON), "-m", "zegosim.local", "--moto-port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
            check=False,
        )
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr.strip() == (
        f"make local: moto cannot listen on 127.0.0.1:{port}: address already in use "
        "(choose another port, or 0 for any free one)"
    )
