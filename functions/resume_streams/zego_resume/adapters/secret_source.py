"""Adapter: ZEGO's AppId and ServerSecret from Secrets Manager, cached for `max_age` seconds
across invocations, re-read at once when ZEGO refuses the signature.

Not Powertools parameters: importing it imports boto3 and every parameter provider, about a
quarter of a cold start, for a cache that is a timestamp and a lock (see aws_clients.py).
Errors name what is wrong with the secret — a missing key, a wrong type — and never a value.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from zego_resume.adapters.aws_clients import aws_client
from zego_resume.ports import SecretError, ZegoCredentials

SECRET_MAX_AGE_SECONDS = 300  # a rotated secret is picked up within this, or at once on 100000005
MAX_APP_ID = 2**32 - 1  # AppId is a uint32

Fetch = Callable[[str], object]  # secret id -> SecretString (str) or SecretBinary (bytes)


class _SecretsManager:
    """Fetch over a botocore client, built on the first read."""

    def __init__(self) -> None:
        self._client: Any = None

    def __call__(self, secret_id: str) -> object:
        if self._client is None:
            self._client = aws_client("secretsmanager", connect_timeout=2, read_timeout=5, attempts=3)
        answer = self._client.get_secret_value(SecretId=secret_id)
        return answer.get("SecretString", answer.get("SecretBinary"))


class SecretsManagerCredentials:
    """CredentialSource backed by Secrets Manager."""

    def __init__(
        self,
        secret_id: str,
        *,
        max_age: float = SECRET_MAX_AGE_SECONDS,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._fetch = fetch or _SecretsManager()
        self._clock = clock
        # Parallel calls share one cache, and those that all see 100000005 refresh it once.
        self._lock = threading.Lock()
        self._cached: ZegoCredentials | None = None
        self._expires_at = 0.0

    def current(self) -> ZegoCredentials:
        """The credentials, cached for max_age. Raises SecretError: retry later."""
        with self._lock:
            if self._cached is not None and self._clock() < self._expires_at:
                return self._cached
            return self._load()

    def refresh(self, stale: ZegoCredentials) -> ZegoCredentials:
        """Re-read the secret, unless a parallel call already replaced `stale`.

        Raises SecretError: retry later.
        """
        with self._lock:
            if self._cached is not None and self._cached != stale:
                return self._cached
            return self._load()

    def _load(self) -> ZegoCredentials:
        failure: SecretError | None = None
        try:
            raw = self._fetch(self._secret_id)
        except Exception as error:  # botocore raises many types; each means "not read"
            failure = SecretError(
                "SecretUnavailable", f"could not read the ZEGO secret ({type(error).__name__})"
            )
        if failure is not None:  # raised outside `except`: no AWS error text rides along
            raise failure
        credentials = parse_credentials(raw)
        self._cached = credentials
        self._expires_at = self._clock() + self._max_age
        return credentials


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_credentials(raw: object) -> ZegoCredentials:
    """The secret's SecretString: JSON {"AppId": <uint32>, "ServerSecret": "<hex>"}.

    Raises SecretError(InvalidSecret) naming the fault, never the value; an operator must fix it.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        raise SecretError("InvalidSecret", "the ZEGO secret has no SecretString")
    # Decoded without raising inside `except`: a JSONDecodeError kept as __context__ would carry
    # the whole SecretString in its `doc` attribute.
    document = _json_or_none(raw)
    if not isinstance(document, dict):
        raise SecretError("InvalidSecret", "the ZEGO secret is not a JSON object")
    for key in ("AppId", "ServerSecret"):
        if key not in document:
            raise SecretError("InvalidSecret", f"the ZEGO secret has no {key} key")
    app_id = document["AppId"]
    if isinstance(app_id, str) and app_id.isascii() and app_id.isdigit():
        app_id = int(app_id)
    if isinstance(app_id, bool) or not isinstance(app_id, int) or not 0 < app_id <= MAX_APP_ID:
        raise SecretError("InvalidSecret", "the ZEGO secret's AppId is not an unsigned 32-bit integer")
    server_secret = document["ServerSecret"]
    if not isinstance(server_secret, str) or not server_secret.strip():
        raise SecretError("InvalidSecret", "the ZEGO secret's ServerSecret is not a non-empty string")
    return ZegoCredentials(app_id=app_id, server_secret=server_secret.strip())
