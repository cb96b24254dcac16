"""Polling, for the tests that change a simulated cluster while a run goes on."""
from __future__ import annotations

import time


def wait_for(predicate, what: str, timeout_s: float = 600, poll_s: float = 0.5) -> None:
    """Return once `predicate()` is true; TimeoutError naming `what` after `timeout_s`."""
    deadline = time.time() + timeout_s
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(poll_s)
