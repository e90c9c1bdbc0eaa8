"""The function's handler with a stopwatch on the fleet's rate ledger: every DynamoDB request the
ledger makes (zego_resume.adapters.rate_ledger.DynamoLedger._update, one UpdateItem) is timed.

Used two ways, both in the measured process and nowhere else:

* as a handler module for bench/driver.py (module "ledger_probe", bench/ on its path): the same
  `lambda_handler` as app.py, and `bench_report()`, which the driver adds to its result;
* by bench/fleet_env.py, which runs an execution environment of the local stack with it.

The wrapper costs two perf_counter() reads and a list append per request, next to a loopback
HTTP request of milliseconds. The function's code is not changed: its class is wrapped here at
run time, before the first event builds the runtime.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from zego_resume.adapters import rate_ledger

_request_seconds: list[float] = []


def install() -> None:
    """Time every ledger request from now on (idempotent)."""
    original = rate_ledger.DynamoLedger._update
    if getattr(original, "_timed", False):
        return

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:  # a failed condition is a request too: its answer says where the schedule is
            _request_seconds.append(time.perf_counter() - started)

    timed._timed = True  # type: ignore[attr-defined]
    rate_ledger.DynamoLedger._update = timed  # type: ignore[method-assign]


def request_times() -> dict[str, Any]:
    """The ledger's requests so far: how many, and their times in milliseconds."""
    times = sorted(seconds * 1000 for seconds in _request_seconds)
    if not times:
        return {"requests": 0}
    return {
        "requests": len(times),
        "totalMs": sum(times),
        "medianMs": statistics.median(times),
        "p90Ms": times[int(0.9 * (len(times) - 1))],
        "maxMs": times[-1],
    }


def bench_report() -> dict[str, Any]:
    """For bench/driver.py: the rate budget's figures since the environment started, and the
    ledger's request times."""
    from zego_resume.runtime import current_budget_stats

    return {"budget": current_budget_stats(), "ledgerRequests": request_times()}


install()

from app import lambda_handler  # noqa: E402 - after the wrapper, before the first event

__all__ = ["bench_report", "install", "lambda_handler", "request_times"]
