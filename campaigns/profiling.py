"""CPU and wall time per pipeline stage (recommend, render, call, validate, store), per process.
Cheap enough to leave on; the generation benchmark reads it."""

import threading
import time
from collections import defaultdict
from contextlib import contextmanager

_lock = threading.Lock()
_totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])  # cpu seconds, wall seconds, count


@contextmanager
def stage(name: str):
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        yield
    finally:
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        with _lock:
            total = _totals[name]
            total[0] += cpu
            total[1] += wall
            total[2] += 1


def stage_totals() -> dict[str, dict[str, float]]:
    with _lock:
        return {name: {"cpu_s": t[0], "wall_s": t[1], "count": t[2]} for name, t in _totals.items()}


def stage_reset() -> None:
    with _lock:
        _totals.clear()
