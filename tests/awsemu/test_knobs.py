"""Knob settings and decisions, as plain objects (the HTTP side door is in test_server)."""

import pytest

from awsemu.knobs import Knobs


def test_fail_next_fails_exactly_n_calls_with_the_chosen_fault():
    knobs = Knobs(fail_next=2, fail_with="timeout")
    assert [knobs.decide("m").fault for _ in range(3)] == ["timeout", "timeout", None]


def test_a_models_own_knobs_override_the_default_and_leave_others_alone():
    knobs = Knobs(latency_ms=10)
    knobs.configure("slow-model", latency_ms=500, fail_next=1)
    assert knobs.decide("slow-model").delay_s == 0.5
    assert knobs.decide("slow-model").fault is None
    assert knobs.decide("other").delay_s == 0.01
    assert knobs.decide("other").fault is None


def test_rates_are_reproducible_for_a_seed():
    def faults(seed):
        knobs = Knobs(seed=seed, throttle_rate=0.3, error_rate=0.3, timeout_rate=0.1)
        return [knobs.decide("m").fault for _ in range(200)]

    assert faults(7) == faults(7)
    assert faults(7) != faults(8)
    assert set(faults(7)) == {None, "throttle", "timeout", "internal", "unavailable"}
    assert 40 < faults(7).count("throttle") < 80


def test_jitter_stays_within_bounds():
    knobs = Knobs(latency_ms=100, latency_jitter_ms=50)
    delays = [knobs.decide("m").delay_s for _ in range(50)]
    assert all(0.1 <= d <= 0.15 for d in delays) and len(set(delays)) > 1


def test_reset_restores_construction_values():
    knobs = Knobs(latency_ms=5)
    knobs.configure(throttle_rate=1.0)
    knobs.configure("m", fail_next=3)
    knobs.reset()
    assert knobs.snapshot()["default"]["latency_ms"] == 5
    assert knobs.snapshot()["default"]["throttle_rate"] == 0
    assert knobs.snapshot()["models"] == {}


BAD_KNOBS = [
    {"throttle_rte": 0.1},  # a typo must not pass silently
    {"throttle_rate": 1.5},
    {"latency_ms": -1},
    {"fail_next": 1.5},
    {"fail_with": "boom"},
]


@pytest.mark.parametrize("values", BAD_KNOBS)
def test_it_rejects_bad_knobs(values):
    with pytest.raises(ValueError):
        Knobs(**values)
    with pytest.raises(ValueError):
        Knobs().configure(**values)
