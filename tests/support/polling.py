"""Bounded waiting: poll a condition until it holds or a deadline passes, never a blind sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Call `probe` until it returns a truthy value and return it; fail after `timeout` seconds.

    The assertion error shows the last value returned (or exception raised), which is what a
    reader needs to see why the wait failed.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except Exception as exc:  # the last error is reported if time runs out
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout} s; last: {last!r}")
        time.sleep(interval)
