"""Wiring: the adapters and the domain put together once per execution environment.

What outlives an invocation lives here: the settings, the ZEGO session and its connections, the
secret cache, the rate budget and the thread pool. Built on the first event, never at import
(docs/contract.md): a missing variable is reported against an event.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zego_resume.adapters.dead_letter_queue import DeadLetterQueue
from zego_resume.adapters.parallel import ThreadPoolRunner
from zego_resume.adapters.rate_budget import LocalSchedule, SlotDispenser, slot_interval
from zego_resume.adapters.secret_source import SecretsManagerCredentials
from zego_resume.adapters.zego_client import ZegoClient
from zego_resume.config import Settings
from zego_resume.domain.resumer import Resumer
from zego_resume.domain.retry import AttemptLoop
from zego_resume.observability import protect_log_handlers
from zego_resume.ports import DeadLetterSink


@dataclass(frozen=True)
class Runtime:
    """What outlives an invocation: settings, the resumer and its adapters, the dead-letter sink."""

    settings: Settings
    resumer: Resumer
    dead_letters: DeadLetterSink

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        workers = settings.max_calls_per_second  # enough to keep the budget busy at ~1 s latency
        credentials = SecretsManagerCredentials(settings.secret_id)
        budget = SlotDispenser(
            LocalSchedule(slot_interval(settings.max_calls_per_second, settings.arrival_jitter_ms / 1000))
        )
        gateway = ZegoClient(
            settings.api_base_url,
            is_test=settings.is_test,
            read_timeout=settings.read_timeout_seconds,
            pool_size=workers,
        )
        return cls(
            settings=settings,
            resumer=Resumer(
                AttemptLoop(gateway, credentials, budget),
                credentials,
                budget,
                ThreadPoolRunner(workers),
                is_test=settings.is_test,
            ),
            dead_letters=DeadLetterQueue(settings.dead_letter_queue_url),
        )


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The execution environment's runtime, built on the first event.

    Raises ConfigurationError: the event goes back to its source until the environment is fixed.
    """
    global _runtime
    if _runtime is None:
        protect_log_handlers()
        _runtime = Runtime.from_settings(Settings.from_environ(os.environ))
    return _runtime


def install_runtime(prepared: Runtime) -> None:
    """Use `prepared` for the events that follow, instead of building one from the environment
    (a harness that runs the entry point over adapters of its own)."""
    global _runtime
    _runtime = prepared


def reset_runtime() -> None:
    """Forget the runtime: the next event builds it again from the environment (tests change the
    environment between cases; nothing in Lambda calls this)."""
    global _runtime
    _runtime = None
