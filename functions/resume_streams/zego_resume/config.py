"""Configuration: the environment read once, validated and typed.

Read when the first event arrives, never at import (docs/contract.md): a missing variable is
reported against an event, where it can be seen, instead of failing the init phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_API_BASE_URL = "https://rtc-api.zego.im"
ZEGO_CALLS_PER_SECOND = 20  # ZEGO's documented limit per AppId (docs/zego-api.md)
ZEGO_TEST_CALLS_PER_SECOND = 5  # the same in ZEGO's test environment
DEFAULT_READ_TIMEOUT_SECONDS = 3.0
# How much later than its write a call may reach ZEGO. Connection set-up is not part of it (a call
# takes its turn once connected), so this is the one-way network jitter between the function's
# region and ZEGO's host; docs/design.md says why 40 ms.
DEFAULT_ARRIVAL_JITTER_MS = 40
MAX_ARRIVAL_JITTER_MS = 1000
# Riding out an outage (docs/design.md, "When ZEGO is down"): one probe per environment this often,
# redeliveries delayed up to this much, and a decision given up after this long on its queue.
DEFAULT_OUTAGE_PROBE_SECONDS = 10.0
DEFAULT_REDELIVERY_MAX_DELAY_SECONDS = 120
MAX_REDELIVERY_DELAY_SECONDS = 43_200  # SQS's ceiling for a visibility timeout
DEFAULT_DECISION_MAX_AGE_SECONDS = 24 * 3600
MAX_DECISION_AGE_SECONDS = 14 * 24 * 3600  # SQS's longest retention
_MAX_DIGITS = 12  # no setting needs more; int() of a long string is refused before it is tried


class ConfigurationError(Exception):
    """The environment is incomplete or malformed. Not retryable until an operator fixes it."""


@dataclass(frozen=True)
class Settings:
    secret_id: str
    dead_letter_queue_url: str
    api_base_url: str = DEFAULT_API_BASE_URL
    is_test: bool = False
    # The fleet's budget (every environment together) and this environment's own share, used
    # when it paces alone: without a ledger, or while the ledger cannot be reached.
    fleet_calls_per_second: int = ZEGO_CALLS_PER_SECOND
    max_calls_per_second: int = ZEGO_CALLS_PER_SECOND
    rate_ledger_table: str | None = None
    max_receive_count: int | None = None
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS
    arrival_jitter_ms: int = DEFAULT_ARRIVAL_JITTER_MS
    outage_probe_seconds: float = DEFAULT_OUTAGE_PROBE_SECONDS
    redelivery_max_delay_seconds: int = DEFAULT_REDELIVERY_MAX_DELAY_SECONDS
    decision_max_age_seconds: int = DEFAULT_DECISION_MAX_AGE_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Build the settings from environment variables.

        Raises ConfigurationError naming the variable at fault; do not retry until it is fixed.
        """
        is_test = _boolean(environ, "ZEGO_IS_TEST", default=False)
        zego_limit = ZEGO_TEST_CALLS_PER_SECOND if is_test else ZEGO_CALLS_PER_SECOND
        fleet = _positive_int(environ, "ZEGO_FLEET_CALLS_PER_SECOND") or zego_limit
        share = _positive_int(environ, "ZEGO_MAX_CALLS_PER_SECOND") or fleet
        if share > fleet:
            raise ConfigurationError(
                f"ZEGO_MAX_CALLS_PER_SECOND ({share}) must not exceed ZEGO_FLEET_CALLS_PER_SECOND ({fleet})"
            )
        return cls(
            secret_id=_required(environ, "ZEGO_SECRET_ID"),
            dead_letter_queue_url=_required(environ, "DEAD_LETTER_QUEUE_URL"),
            api_base_url=_base_url(environ.get("ZEGO_API_BASE_URL", "").strip()),
            is_test=is_test,
            fleet_calls_per_second=fleet,
            max_calls_per_second=share,
            rate_ledger_table=environ.get("ZEGO_RATE_LEDGER_TABLE", "").strip() or None,
            max_receive_count=_positive_int(environ, "MAX_RECEIVE_COUNT"),
            read_timeout_seconds=_positive_float(
                environ, "ZEGO_READ_TIMEOUT_SECONDS", default=DEFAULT_READ_TIMEOUT_SECONDS
            ),
            arrival_jitter_ms=_bounded_int(
                environ,
                "ZEGO_ARRIVAL_JITTER_MS",
                default=DEFAULT_ARRIVAL_JITTER_MS,
                top=MAX_ARRIVAL_JITTER_MS,
            ),
            outage_probe_seconds=_positive_float(
                environ, "ZEGO_OUTAGE_PROBE_SECONDS", default=DEFAULT_OUTAGE_PROBE_SECONDS
            ),
            redelivery_max_delay_seconds=_positive_int(
                environ, "REDELIVERY_MAX_DELAY_SECONDS", top=MAX_REDELIVERY_DELAY_SECONDS
            )
            or DEFAULT_REDELIVERY_MAX_DELAY_SECONDS,
            decision_max_age_seconds=_positive_int(
                environ, "DECISION_MAX_AGE_SECONDS", top=MAX_DECISION_AGE_SECONDS
            )
            or DEFAULT_DECISION_MAX_AGE_SECONDS,
        )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is required and is not set")
    return value


def _base_url(value: str) -> str:
    if not value:
        return DEFAULT_API_BASE_URL
    url = urlsplit(value)
    if url.scheme not in ("https", "http") or not url.hostname:
        raise ConfigurationError("ZEGO_API_BASE_URL must be https://<host> (or http:// locally)")
    return value.rstrip("/")


def _boolean(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be true or false")


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS


def _positive_int(environ: Mapping[str, str], name: str, *, top: int | None = None) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not _digits(value) or int(value) < 1 or (top is not None and int(value) > top):
        limit = f" of at most {top}" if top is not None else ""
        raise ConfigurationError(f"{name} must be a positive integer{limit}")
    return int(value)


def _bounded_int(environ: Mapping[str, str], name: str, *, default: int, top: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not _digits(value) or int(value) > top:
        raise ConfigurationError(f"{name} must be an integer within 0..{top}")
    return int(value)


def _positive_float(environ: Mapping[str, str], name: str, *, default: float) -> float:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value) if len(value) <= _MAX_DIGITS * 2 else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds")
    return number
