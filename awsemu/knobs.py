"""Latency, fault and quota knobs: a global default plus per-target overrides, drawn from one seeded RNG.

A target is whatever names what a call reaches: a Bedrock model or inference-profile id exactly as the client
sent it, or a Personalize recommender or campaign ARN. The global default applies to those model calls only;
any other operation (S3, STS, the control planes) is its own target, by operation name, e.g. "PutObject".
"""

import random
import threading
from dataclasses import dataclass

FAULTS = ("throttle", "timeout", "internal", "unavailable")

DEFAULTS = {
    "latency_ms": 0.0,
    "latency_jitter_ms": 0.0,
    "throttle_rate": 0.0,
    "error_rate": 0.0,  # half "internal" (500), half "unavailable" (503)
    "timeout_rate": 0.0,
    "fail_next": 0,  # the next N calls fail with `fail_with`, before any random draw
    "fail_with": "throttle",
    "tokens_per_minute": 0,  # a Bedrock-style quota per model over a sliding minute; 0: unlimited
    "status_step_ms": 0.0,  # how long a created resource spends in each status before the next
}
KNOB_NAMES = tuple(DEFAULTS)


@dataclass(frozen=True)
class Decision:
    delay_s: float
    fault: str | None  # one of FAULTS, or None to answer normally


def validated(values: dict) -> dict:
    """The knob values, checked; ValueError names the first bad one."""
    for name, value in values.items():
        if name not in DEFAULTS:
            raise ValueError(f"unknown knob {name!r}; known knobs: {', '.join(KNOB_NAMES)}")
        if name == "fail_with":
            if value not in FAULTS:
                raise ValueError(f"fail_with must be one of {', '.join(FAULTS)}")
        elif name == "fail_next":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("fail_next must be a whole number >= 0")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a number >= 0")
        elif name.endswith("_rate") and value > 1:
            raise ValueError(f"{name} is a probability and must be <= 1")
    return dict(values)


class Knobs:
    """Thread-safe knob settings. Decisions are reproducible for a given seed and call order."""

    def __init__(self, seed: int = 0, **defaults):
        self._seed = seed
        self._initial = validated(defaults)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the values given at construction, with the RNG reseeded."""
        with self._lock:
            self._default = dict(self._initial)
            self._models: dict[str, dict] = {}
            self._rng = random.Random(self._seed)

    def configure(self, model_id: str | None = None, **values) -> None:
        values = validated(values)
        with self._lock:
            scope = self._models.setdefault(model_id, {}) if model_id else self._default
            scope.update(values)

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "default": {**DEFAULTS, **self._default},
                "models": {model_id: dict(values) for model_id, values in self._models.items()},
            }

    def value(self, name: str, model_id: str = "") -> float:
        """One knob's value for a target (its override, else the global default)."""
        with self._lock:
            return {**DEFAULTS, **self._default, **self._models.get(model_id, {})}[name]

    def decide(self, model_id: str, use_default: bool = True) -> Decision:
        with self._lock:
            override = self._models.get(model_id, {})
            default = self._default if use_default else {}
            knobs = {**DEFAULTS, **default, **override}
            delay_ms = knobs["latency_ms"] + self._rng.uniform(0, knobs["latency_jitter_ms"])
            fault = self._take_fail_next(override, default, knobs["fail_with"]) or self._roll(knobs)
        return Decision(delay_s=delay_ms / 1000, fault=fault)

    def _take_fail_next(self, override: dict, default: dict, fail_with: str) -> str | None:
        # A model's own counter wins over the global one, so a test can fail one model and not another.
        scope = override if override.get("fail_next") else default
        if scope.get("fail_next", 0) <= 0:
            return None
        scope["fail_next"] -= 1
        return fail_with

    def _roll(self, knobs: dict) -> str | None:
        draw = self._rng.random()
        for fault, rate in (("throttle", knobs["throttle_rate"]), ("timeout", knobs["timeout_rate"])):
            if draw < rate:
                return fault
            draw -= rate
        if draw < knobs["error_rate"]:
            return self._rng.choice(("internal", "unavailable"))
        return None
