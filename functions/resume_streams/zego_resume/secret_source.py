"""Adapter: ZEGO's AppId and ServerSecret from Secrets Manager, through Powertools parameters
(which caches the value for `max_age` seconds across invocations).

Errors name what is wrong with the secret — a missing key, a wrong type — and never a value.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from .ports import SecretError, ZegoCredentials

SECRET_MAX_AGE_SECONDS = 300  # a rotated secret is picked up within this, or at once on 100000005
MAX_APP_ID = 2**32 - 1  # AppId is a uint32

Fetch = Callable[..., Any]  # parameters.get_secret's shape: (name, max_age=, force_fetch=)


def _powertools_get_secret(name: str, *, max_age: int, force_fetch: bool) -> Any:
    # Imported on first use: it pulls in boto3, which importing the handler must not pay for.
    from aws_lambda_powertools.utilities import parameters

    return parameters.get_secret(name, max_age=max_age, force_fetch=force_fetch)


class SecretsManagerCredentials:
    """CredentialSource backed by Secrets Manager."""

    def __init__(
        self,
        secret_id: str,
        *,
        max_age: int = SECRET_MAX_AGE_SECONDS,
        fetch: Fetch = _powertools_get_secret,
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._fetch = fetch
        self._lock = threading.Lock()  # parallel calls that all see 100000005 refresh once
        self._parsed: tuple[object, ZegoCredentials] | None = None

    def current(self) -> ZegoCredentials:
        """The credentials, cached. Raises SecretError: retry later."""
        return self._load(force=False)

    def refresh(self, stale: ZegoCredentials) -> ZegoCredentials:
        """Re-read the secret, unless a parallel call already replaced `stale`.

        Raises SecretError: retry later.
        """
        with self._lock:
            if self._parsed is not None and self._parsed[1] != stale:
                return self._parsed[1]
            return self._load(force=True)

    def _load(self, *, force: bool) -> ZegoCredentials:
        failure: SecretError | None = None
        try:
            raw = self._fetch(self._secret_id, max_age=self._max_age, force_fetch=force)
        except Exception as error:  # Powertools wraps every AWS failure in GetParameterError
            failure = SecretError(
                "SecretUnavailable", f"could not read the ZEGO secret ({type(error).__name__})"
            )
        if failure is not None:  # raised outside `except`: no AWS error text rides along
            raise failure
        parsed = self._parsed
        if parsed is not None and parsed[0] is raw:  # the cache answered: nothing to parse
            return parsed[1]
        credentials = parse_credentials(raw)
        self._parsed = (raw, credentials)
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
