"""A clock the test moves by hand."""

from __future__ import annotations


class FakeClock:
    """Stands for the wall clock or the monotonic one; reads `now` until advanced."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
