"""The pipeline's stages (recommend, render, call, validate, screen, store), marked where they run, so that a
benchmark can time them: a stage costs nothing unless something listens (bench/generation.py --profile does)."""

import time
from collections.abc import Callable
from contextlib import contextmanager

# Called with (stage, cpu seconds of the calling thread, wall seconds) after each stage; None: nobody listens.
listener: Callable[[str, float, float], None] | None = None


@contextmanager
def stage(name: str):
    heard = listener
    if heard is None:
        yield
        return
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        yield
    finally:
        heard(name, time.thread_time() - cpu, time.perf_counter() - wall)
