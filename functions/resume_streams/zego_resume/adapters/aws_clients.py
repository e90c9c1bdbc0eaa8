"""Adapter: botocore clients for the function's two AWS services, built on first use.

botocore rather than boto3 (or Powertools parameters, which imports boto3 and every parameter
provider): importing boto3 pulls in s3transfer and multiprocessing, about 35 ms of a cold start
that uses none of them, and the clients are botocore's either way. No endpoint or region is set
here, so AWS_REGION / AWS_DEFAULT_REGION and AWS_ENDPOINT_URL apply as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_session: Any = None
_first_client = threading.Event()  # set once a client exists: the session's loaders are warm


def aws_client(service: str, *, connect_timeout: float, read_timeout: float, attempts: int) -> Any:
    """A botocore client for `service` with explicit timeouts and standard-mode retries."""
    global _session
    from botocore.config import Config

    with _lock:
        if _session is None:
            import botocore.session

            _session = botocore.session.get_session()
        client = _session.create_client(
            service,
            region_name=_session.get_config_variable("region") or _region_from_lambda(),
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"mode": "standard", "max_attempts": attempts},
            ),
        )
    _first_client.set()
    return client


def after_first_client(build: Callable[[], None], *, wait: float = 2.0) -> None:
    """Run `build` (which makes a client) on a thread of its own once the first client of the
    environment exists, or after `wait` seconds: a client the first event needs later (the rate
    ledger's) is then built while the event waits on the network (the secret, ZEGO's TLS set-up)
    instead of after it, and never ahead of the first one. Errors are left to `build`."""

    def run() -> None:
        _first_client.wait(wait)
        build()

    threading.Thread(target=run, name="prepare-aws-client", daemon=True).start()


def _region_from_lambda() -> str | None:
    # Lambda sets AWS_REGION; botocore itself reads only AWS_DEFAULT_REGION.
    import os

    return os.environ.get("AWS_REGION") or None


def error_code(error: Exception) -> str | None:
    """The AWS error code a botocore exception carries (None for other exceptions)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None
