"""Statuses a created resource walks through over time, as the real control planes report them.

A resource spends `step_s` seconds in each status, then settles: the work it stands for (an import, a batch
job) runs once, at the moment the first caller sees it finish, and decides between success and failure.
Status is computed when asked, so no background threads are needed and step_s=0 settles at once.
"""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class Lifecycle:
    def __init__(self, steps: tuple[str, ...], *, step_s: float, done: str, failed: str,
                 work: Callable[[], str | None] | None = None):  # fmt: skip
        self.steps, self.step_s, self.done, self.failed = steps, step_s, done, failed
        self.work = work  # runs once on settling; returns a failure reason, or None on success
        self.started = time.monotonic()
        self.created_at = datetime.now(UTC)
        self.updated_at = self.created_at
        self.failure_reason = ""
        self._final: str | None = None
        self._lock = threading.Lock()

    def status(self) -> str:
        with self._lock:
            if self._final is None:
                elapsed = time.monotonic() - self.started
                step = int(elapsed / self.step_s) if self.step_s else len(self.steps)
                if step < len(self.steps):
                    return self.steps[step]
                self._settle()
            return self._final

    def _settle(self) -> None:
        reason = self.work() if self.work else None
        self._final = self.failed if reason else self.done
        self.failure_reason = reason or ""
        self.updated_at = datetime.now(UTC)
