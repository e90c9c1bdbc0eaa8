"""AWS clients for the CLI, and AWS errors told in one line.

No endpoint or region is written here: boto3 takes them from the standard variables
(AWS_ENDPOINT_URL, AWS_PROFILE, ...) or the shared config, so one command works against moto on
loopback and against AWS alike.

The region: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's `region` (REGION_RULE). botocore
itself reads only AWS_DEFAULT_REGION; Lambda sets both, and the AWS CLI and the newer SDKs let
AWS_REGION win, so the CLI, the local stack (zegosim.local) and the demo all read it this way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, NoRegionError

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")  # the first one set wins
REGION_RULE = (
    "AWS_REGION or AWS_DEFAULT_REGION (AWS_REGION wins when both are set), else the profile's region"
)
NO_REGION = "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION, or a region in the AWS profile"

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

            # None: botocore goes on to the profile's region.
            self._session = boto3.session.Session(region_name=region_from(os.environ))
        return self._session


def region_from(environ: Mapping[str, str]) -> str | None:
    """The region the variables name (REGION_RULE), or None to leave it to the profile."""
    for name in REGION_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def unsupported_action(error: ClientError) -> bool:
    """Whether an error means "this service does not know that action" (an emulator, an older
    endpoint), as opposed to a real refusal."""
    code = error_code(error)
    if code in UNSUPPORTED_ACTION_CODES or http_status(error) in (404, 501):
        return True
    # moto 5.2.5 (server mode) raises NotImplementedError for some actions, which its web server
    # answers with a bare HTML "500 Internal Server Error" page. With no AWS error document to
    # read, botocore uses the HTTP status as the code: "500". AWS always names its errors, so a
    # code of bare digits says "not a service that knows this action", never a real failure.
    return code.isdigit()


# What a service that does not know an action answers. AWS names UnsupportedOperation; other
# emulators answer an unknown action with InvalidAction or a 404/501.
UNSUPPORTED_ACTION_CODES = frozenset(
    {
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "InvalidAction",
        "UnknownOperation",
        "UnknownOperationException",
        "NotImplemented",
        "NotSupported",
    }
)


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
    elif isinstance(error, NoRegionError):
        message = NO_REGION
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
