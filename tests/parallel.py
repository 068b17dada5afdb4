"""Parallel runs (pytest-xdist, `make test` runs two workers): each worker gets a Redis db of its own, as it gets a
test database of its own from pytest-django (test_<name>_gw0, _gw1, ...).

Worker gwN uses db (base - N), the base being REDIS_URL's db: `make test`'s default base 15 gives gw0 db 15 and
gw1 db 14. Counting down keeps every worker within Redis's 16 dbs (0-15) from the highest base; a run that would
need a db below 0 is refused. Without xdist (`-n 0` or `-p no:xdist`) the run uses REDIS_URL as it is.

Workers' test databases restart their ids at 1, so tenant 1 of gw0 and tenant 1 of gw1 would share every key kept
per tenant (the API's rate windows, pacing and LLM rate windows, cached plans), and a worker test's `flushdb`
would empty the other worker's broker queue. The URL is set in each worker's environment before the worker starts,
so Django's settings (the Celery broker, the cache, the limiters) and every process a test starts read the same.
"""

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

MARK = "MAILSAAS_TEST_REDIS_WORKER"  # the worker the URL was chosen for: checked by the worker itself


def worker_redis_url(url: str, index: int) -> str:
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    db = base - index
    if db < 0:
        raise pytest.UsageError(f"REDIS_URL {url}: worker gw{index} would need db {db}; give a base db of at least "
                                f"{index} (each xdist worker gwN uses db base - N)")  # fmt: skip
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    url = os.environ.get("REDIS_URL")
    if not url:
        return
    for spec in specs:
        index = int(spec.id.removeprefix("gw"))
        spec.env["REDIS_URL"] = worker_redis_url(url, index)
        spec.env[MARK] = spec.id


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and os.environ.get("REDIS_URL") and os.environ.get(MARK) != worker:
        raise pytest.UsageError(f"xdist worker {worker} did not get a Redis db of its own (tests/parallel.py)")
