"""The services a benchmark talks to, each in a process of its own so that the measured process
holds nothing but the function: moto server (SQS, Secrets Manager) and the ZEGO emulator.

Every wait here is bounded in time; every process started here is stopped by its own handle.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable  # .venv/bin/python under `make bench`
START_TIMEOUT_SECONDS = 30.0
ADMIN_TOKEN_PREFIX = "admin-token "  # noqa: S105 - how the emulator's second line on stdout starts
STOP_TIMEOUT_SECONDS = 5.0


class HasBaseUrl(Protocol):
    @property
    def base_url(self) -> str: ...


class ServiceError(RuntimeError):
    """A service did not start or answer: the benchmark cannot run."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Poll `ready` until it holds or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(interval)
    return ready()


def http_json(
    method: str,
    url: str,
    body: Mapping[str, Any] | None = None,
    timeout: float = 5.0,
    *,
    bearer_token: str | None = None,
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if bearer_token is not None:
        headers["Authorization"] = f"Bearer {bearer_token}"
    request = urllib.request.Request(  # noqa: S310 - loopback URLs we built
        url, data=data, method=method, headers=headers
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _read_lines(stream: IO[bytes], count: int, timeout: float) -> list[str]:
    """The first `count` lines a child prints; fewer when it prints fewer within `timeout`.
    Reads the pipe's descriptor itself: a buffered readline() could swallow the second line
    while select() waits for it."""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while data.count(b"\n") < count:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(fd, 4096)
            if not chunk:  # the child closed its stdout (it exited)
                break
            data += chunk
    return [line.decode().strip() for line in data.split(b"\n")[:count]]


class MotoProcess:
    """moto server on 127.0.0.1 and a free port, its DynamoDB writes atomic (bench/moto_server.py:
    the fleet's rate ledger needs them)."""

    def __init__(self, log: IO[bytes]) -> None:
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.endpoint_url = ""

    def start(self) -> str:
        port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [PYTHON, "-m", "bench.moto_server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            cwd=ROOT,
        )
        if not wait_until(self._answers, timeout=START_TIMEOUT_SECONDS):
            self.stop()
            raise ServiceError(f"moto server did not answer on {self.endpoint_url}")
        return self.endpoint_url

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise ServiceError(f"moto server exited with {self._process.returncode}")
        try:
            http_json("GET", f"{self.endpoint_url}/moto-api/data.json", timeout=1.0)
        except (OSError, ValueError):
            return False
        return True

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)
            self._process = None

    def environment(self) -> dict[str, str]:
        """What points boto3 (and so the function) at this server; as zegosim.aws sets it."""
        from zegosim.aws import LOCAL_CREDENTIALS, REGION

        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }


class EmulatorProcess:
    """`python -m zegosim.zego` on a free port; the secret goes through the environment, never
    argv (where `ps` would show it). It prints its base URL, then `admin-token <token>`: every
    admin request carries that token."""

    def __init__(self, app_id: int, server_secret: str, *, rate_limit: int, log: IO[bytes]) -> None:
        self.app_id = app_id
        self.rate_limit = rate_limit
        self._secret = server_secret
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.admin_token = ""

    def start(self) -> str:
        environment = {**os.environ, "ZEGO_SERVER_SECRET": self._secret}
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                PYTHON,
                "-m",
                "zegosim.zego",
                "--app-id",
                str(self.app_id),
                "--port",
                "0",
                "--rate-limit",
                str(self.rate_limit),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
            env=environment,
        )
        assert self._process.stdout is not None
        line, token_line = [*_read_lines(self._process.stdout, 2, START_TIMEOUT_SECONDS), "", ""][:2]
        if not line.startswith("http://"):
            self.stop()
            raise ServiceError(f"the ZEGO emulator printed no base URL (got {line!r})")
        token = token_line.removeprefix(ADMIN_TOKEN_PREFIX)
        if not token_line.startswith(ADMIN_TOKEN_PREFIX) or not token:
            self.stop()
            # Not the line itself: it would be the token, were the prefix merely misspelt.
            raise ServiceError("the ZEGO emulator printed no admin token after its base URL")
        self.base_url = line.rstrip("/")
        self.admin_token = token
        return self.base_url

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def state(self) -> dict[str, Any]:
        state = http_json("GET", f"{self.base_url}/_emulator/state", bearer_token=self.admin_token)
        assert isinstance(state, dict)
        return state

    def set_latency(self, seconds: float) -> None:
        http_json(
            "POST", f"{self.base_url}/_emulator/latency", {"seconds": seconds}, bearer_token=self.admin_token
        )

    def set_jitter(self, seconds: float, seed: int | None = None) -> None:
        """Each call reaches the rules 0..`seconds` late (its network jitter)."""
        body: dict[str, Any] = {"seconds": seconds}
        if seed is not None:
            body["seed"] = seed
        http_json("POST", f"{self.base_url}/_emulator/jitter", body, bearer_token=self.admin_token)

    def set_connection_setup_delay(self, seconds: float) -> None:
        """A new connection's first request waits `seconds` (a TLS handshake with a far host)."""
        http_json(
            "POST",
            f"{self.base_url}/_emulator/connection-setup",
            {"seconds": seconds},
            bearer_token=self.admin_token,
        )

    def reset(self) -> None:
        http_json("POST", f"{self.base_url}/_emulator/reset", {}, bearer_token=self.admin_token)


class Services(contextlib.ExitStack):
    """moto server, the AWS resources of one deployment, and ZEGO emulators by rate limit."""

    def __init__(self, app_id: int, server_secret: str, log_path: Path) -> None:
        super().__init__()
        self.app_id = app_id
        self.server_secret = server_secret
        self._log = self.enter_context(log_path.open("ab"))
        self.moto = MotoProcess(self._log)
        self._emulators: dict[int, EmulatorProcess] = {}
        self.stack: Any = None  # zegosim.aws.Stack

    def start(self) -> Services:
        from zegosim.aws import create_stack

        self.moto.start()
        self.callback(self.moto.stop)
        self.stack = create_stack(
            app_id=self.app_id, server_secret=self.server_secret, environment=self.moto.environment()
        )
        return self

    def emulator(self, rate_limit: int) -> EmulatorProcess:
        """The emulator allowing `rate_limit` calls a second, started on first use."""
        if rate_limit not in self._emulators:
            emulator = EmulatorProcess(self.app_id, self.server_secret, rate_limit=rate_limit, log=self._log)
            emulator.start()
            self.callback(emulator.stop)
            self._emulators[rate_limit] = emulator
        return self._emulators[rate_limit]

    def function_environment(
        self, emulator: HasBaseUrl, *, stack: Any = None, **extra: str
    ) -> dict[str, str]:
        """The measured process's whole environment: the function's variables as the template
        sets them (tracing off), this stack's resources (or `stack`'s: a zegosim.aws.Stack),
        moto's endpoint, and little else — no PYTHON* variables, no AWS config files — so every
        process starts the same way. `emulator`: an EmulatorProcess or an in-process
        zegosim.zego.ZegoEmulator, anything with the base URL the function should call."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - only a fallback
            "LANG": "C.UTF-8",
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_LAMBDA_FUNCTION_NAME": "zego-stream-resume-ResumeStreamsFunction",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "POWERTOOLS_SERVICE_NAME": "zego-stream-resume",
            "POWERTOOLS_METRICS_NAMESPACE": "ZegoStreamModeration",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **self.moto.environment(),
            **(stack or self.stack).function_environment(emulator.base_url),
            **extra,
        }
