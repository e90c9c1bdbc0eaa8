"""Adapter: runs a batch's calls on a thread pool, some at once, and waits for them no longer
than the invocation can.

Threads, because a call spends its time waiting on ZEGO (and on its rate-limit turn), and the
GIL is free meanwhile; the pool lives as long as the execution environment, and is built on the
first batch that needs it (a one-call event, the common cold start, never does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # typing only: a one-call event never imports concurrent.futures
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")

logger = logging.getLogger(__name__)


class ThreadPoolRunner:
    """CallRunner on a ThreadPoolExecutor of `max_workers` threads."""

    def __init__(self, max_workers: int, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._monotonic = monotonic
        self._executor: ThreadPoolExecutor | None = None

    def run(self, tasks: Sequence[Callable[[], T]], *, wait_until: float) -> list[T | None]:
        if len(tasks) <= 1:  # no thread for the common one-call event: a cheaper cold start
            return [task() for task in tasks]
        from concurrent.futures import ThreadPoolExecutor, wait

        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="zego")
        # The executor starts tasks in the order they are submitted, so the calls of the first
        # decisions go first and, when time runs short, whole decisions finish first.
        futures = [self._executor.submit(task) for task in tasks]
        wait(futures, timeout=max(0.0, wait_until - self._monotonic()))
        results: list[T | None] = []
        for future in futures:
            # A task not done by now is given up: one not started never starts, one in flight
            # ends by its own deadline and its result is dropped (the caller reports it unfinished).
            if future.done() and not future.cancelled() and future.exception() is None:
                results.append(future.result())
            else:
                if future.done() and not future.cancelled():
                    # A bug, not a ZEGO failure: the calls it held go back unfinished, never lost.
                    logger.error("a call's task raised", extra={"error": type(future.exception()).__name__})
                future.cancel()
                results.append(None)
        return results
