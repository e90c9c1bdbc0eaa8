"""AWS clients for the CLI, and AWS errors told in one line.

No endpoint or region is written here: boto3 takes them from the standard variables
(AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_PROFILE, ...) or the shared config, so one command works
against moto on loopback and against AWS alike.
"""

from __future__ import annotations

import os
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

# Bounded waits: an operator at a terminal prefers a clear error to a long hang.
DEFAULT_ATTEMPTS = 3
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    # total_max_attempts counts the first call; botocore's `max_attempts` would count retries only.
    retries={"mode": "standard", "total_max_attempts": DEFAULT_ATTEMPTS},
)


class Clients:
    """One boto3 session per command, and the clients it needs, made on first use."""

    def __init__(self) -> None:
        self._session: Any = None
        self._clients: dict[tuple[str, int], Any] = {}

    def get(self, service: str, *, attempts: int = DEFAULT_ATTEMPTS) -> Any:
        """A client for `service` that makes at most `attempts` calls per operation."""
        key = (service, attempts)
        if key not in self._clients:
            config = CLIENT_CONFIG
            if attempts != DEFAULT_ATTEMPTS:
                config = CLIENT_CONFIG.merge(
                    Config(retries={"mode": "standard", "total_max_attempts": attempts})
                )
            self._clients[key] = self._get_session().client(service, config=config)
        return self._clients[key]

    def _get_session(self) -> Any:
        if self._session is None:
            import boto3

            # botocore reads only AWS_DEFAULT_REGION; Lambda and the newer SDKs also honour
            # AWS_REGION (docs/contract.md names it), so take it when it is the only one set.
            region = None
            if not os.environ.get("AWS_DEFAULT_REGION"):
                region = os.environ.get("AWS_REGION") or None
            self._session = boto3.session.Session(region_name=region)
        return self._session


def error_code(error: BaseException) -> str:
    """The AWS error code (e.g. AWS.SimpleQueueService.NonExistentQueue), or the error's type name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__


def http_status(error: ClientError) -> int | None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def describe(error: BaseException, *, with_operation: bool = True) -> str:
    """One line: the error code, the service's message, and (with_operation) the call refused."""
    operation = None
    if isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message") or "")
        operation = error.operation_name if with_operation else None
    else:
        message = str(error)
    message = " ".join(message.split())  # a message may hold newlines
    if message.startswith("<"):  # a web server's error page, not an AWS error document
        status = http_status(error) if isinstance(error, ClientError) else None
        message = f"HTTP {status} with an HTML page instead of an AWS error"
    if len(message) > 300:
        message = message[:300] + "…"
    where = f" ({operation})" if operation else ""
    return f"{error_code(error)}: {message or 'no message'}{where}"
