"""Domain: the moment an invocation's work must stop."""

from __future__ import annotations

import time
from collections.abc import Callable

SAFETY_MARGIN_SECONDS = 2.0  # kept for dead-lettering and answering the trigger (template.yaml)


class Deadline:
    """The Lambda's remaining time less a safety margin kept for dead-lettering and answering."""

    def __init__(
        self,
        remaining_seconds: float,
        *,
        safety_margin: float = SAFETY_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.at = clock() + remaining_seconds - safety_margin  # a time.monotonic() value
        self.hard_at = self.at + safety_margin  # when Lambda ends the invocation

    def time_left(self) -> float:
        return self.at - self._clock()

    def margin_left(self) -> float:
        """Time left before Lambda's own timeout: what the settling phase may spend."""
        return self.hard_at - self._clock()
