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
from zego_resume.adapters.rate_budget import LocalSchedule, SlotDispenser, SlotSchedule, slot_interval
from zego_resume.adapters.rate_ledger import DynamoLedger
from zego_resume.adapters.redelivery import SqsRedelivery
from zego_resume.adapters.secret_source import SecretsManagerCredentials
from zego_resume.adapters.zego_client import ZegoClient
from zego_resume.config import Settings
from zego_resume.domain.outage import OutageDetector, RetryBudget
from zego_resume.domain.resumer import Resumer
from zego_resume.domain.retry import AttemptLoop
from zego_resume.observability import protect_log_handlers
from zego_resume.ports import DeadLetterSink, RedeliveryDelay

MAX_WORKERS = 32


@dataclass(frozen=True)
class Runtime:
    """What outlives an invocation: settings, the resumer and its adapters, the dead-letter sink,
    and the rate budget (whose report the handler records)."""

    settings: Settings
    resumer: Resumer
    dead_letters: DeadLetterSink
    budget: SlotDispenser | None = None
    outage: OutageDetector | None = None
    retry_budget: RetryBudget | None = None
    redelivery: RedeliveryDelay | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        # Enough workers to keep the fleet's budget busy at ~1 s of ZEGO latency: one
        # environment alone may use all of it when the ledger is on.
        workers = (
            settings.fleet_calls_per_second if settings.rate_ledger_table else settings.max_calls_per_second
        )
        credentials = SecretsManagerCredentials(settings.secret_id)
        budget = SlotDispenser(_schedule(settings, credentials))
        gateway = ZegoClient(
            settings.api_base_url,
            is_test=settings.is_test,
            read_timeout=settings.read_timeout_seconds,
            pool_size=workers,
        )
        gateway.prepare()  # ZEGO's handshakes overlap the secret's loading
        outage = OutageDetector(settings.outage_probe_seconds)
        retry_budget = RetryBudget()
        return cls(
            settings=settings,
            resumer=Resumer(
                AttemptLoop(gateway, credentials, budget, outage=outage, retry_budget=retry_budget),
                credentials,
                budget,
                ThreadPoolRunner(workers),
                is_test=settings.is_test,
            ),
            dead_letters=DeadLetterQueue(settings.dead_letter_queue_url),
            budget=budget,
            outage=outage,
            retry_budget=retry_budget,
            redelivery=SqsRedelivery(),
        )


def _schedule(settings: Settings, credentials: SecretsManagerCredentials) -> SlotSchedule:
    """The fleet's ledger when there is one, over this environment's own share as its fallback;
    else the share alone (the static split)."""
    jitter = settings.arrival_jitter_ms / 1000
    alone = LocalSchedule(slot_interval(settings.max_calls_per_second, jitter))
    if settings.rate_ledger_table is None:
        return alone
    ledger = DynamoLedger(
        settings.rate_ledger_table,
        slot_interval(settings.fleet_calls_per_second, jitter),
        key=lambda: f"zego-rate#{credentials.current().app_id}",  # one budget per AppId
        fallback=alone,
    )
    ledger.prepare()
    return ledger


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


def current_budget_stats() -> dict[str, object] | None:
    """What this environment's rate budget did since it started (for the local stack's runners
    and benchmarks), with the ledger's request count; None before the first event."""
    if _runtime is None or _runtime.budget is None:
        return None
    stats = _runtime.budget.stats
    return {
        "taken": stats.taken,
        "missed": stats.missed,
        "late": stats.late,
        "lost": stats.lost,
        "max_lateness": stats.max_lateness,
        "ledger_requests": getattr(_runtime.budget.schedule, "requests", 0),
    }
