"""Each xdist worker's Redis db (tests/parallel.py): gwN takes the base db - N, never one outside 0-15."""

import pytest

from tests.parallel import worker_redis_url


def test_each_worker_counts_down_from_the_base_db():
    assert [worker_redis_url("redis://127.0.0.1:6379/15", n) for n in range(3)] == [
        "redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/14", "redis://127.0.0.1:6379/13",
    ]  # fmt: skip
    assert worker_redis_url("redis://:pw@cache.internal:6380/6?socket_timeout=5", 1) == (
        "redis://:pw@cache.internal:6380/5?socket_timeout=5"
    )
    assert worker_redis_url("redis://127.0.0.1:6379", 0) == "redis://127.0.0.1:6379/0"  # no db: Redis's db 0


def test_a_worker_that_would_need_a_db_below_0_is_refused():
    with pytest.raises(pytest.UsageError, match="worker gw2 would need db -1"):
        worker_redis_url("redis://127.0.0.1:6379/1", 2)
