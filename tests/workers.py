"""Real Celery worker processes for tests: started on the test database and the Redis broker, with the
Bedrock provider pointed at the emulator; each logs to a file the test can show when something goes wrong."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, *, emulator_url: str, log_path: Path, name: str = "worker", **env):
        self.log = open(log_path, "a+")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "celery", "-A", "saas", "worker", "--concurrency=2", "--loglevel=info"]
        command += [f"--hostname={name}@%h"]  # several workers on one host: each its own node name
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        environment = {
            **os.environ, "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL, "LLM_BACKEND": "bedrock",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": emulator_url, "EMAIL_BACKEND": "locmem", **env,
        }  # fmt: skip
        # A process group of its own, so a test can kill the main process and its pool children at once.
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=self.log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL, as a crashed host would: no warm shutdown, no acks."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the worker has said it is ready (connected to the broker, its pool started)."""
        wait_for(lambda: " ready." in self.output(), timeout=timeout, worker=self, what="the worker to be ready")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-5000:]


@pytest.fixture
def start_worker(transactional_db, aws_emulator_env, tmp_path):
    """start_worker(**env) → a running Worker; every worker is stopped after the test."""
    if not settings.REDIS_URL or connection.vendor != "postgresql":
        pytest.fail("worker tests need PostgreSQL and Redis: run them with `make test`")
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # no stale messages from earlier tests
    started: list[Worker] = []

    def start(**env) -> Worker:
        name = f"worker{len(started) + 1}"
        started.append(Worker(emulator_url=aws_emulator_env.url, log_path=tmp_path / f"{name}.log", name=name, **env))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate, *, timeout: float = 120.0, worker: Worker | None = None, what: str = "the worker") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited early:\n{worker.output()}")
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}" + (f"; worker log:\n{worker.output()}" if worker else ""))


@pytest.fixture
def start_workers(start_worker):
    """start_workers(n, **env) → n running Workers on the same broker and database (two hosts' worth), each
    with its own log; stopped after the test."""

    def start(n: int, **env) -> list[Worker]:
        workers = [start_worker(**env) for _ in range(n)]
        for worker in workers:  # all of them before any task: none takes the whole queue while others start
            worker.wait_ready()
        return workers

    return start


def wait_for_all(predicate, *, workers: list[Worker], timeout: float = 120.0, what: str = "the workers") -> None:
    """wait_for over several workers: fails early if any exits, showing every log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for worker in workers:
            if worker.process.poll() is not None:
                pytest.fail(f"a worker exited early:\n{worker.output()}")
        time.sleep(0.3)
    logs = "\n".join(f"--- worker {n + 1}:\n{w.output()}" for n, w in enumerate(workers))
    pytest.fail(f"timed out waiting for {what}; worker logs:\n{logs}")
