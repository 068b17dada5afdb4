"""What the benchmarks share: their error that says what to do, their own PostgreSQL database (made when missing)
and Django on it, free ports, the AWS emulator, percentiles and the machine's load. Imported by the benchmark
scripts, which run from this folder (`python bench/review.py`)."""

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_handed_out: set[int] = set()


class BenchError(Exception):
    """What went wrong and what to do about it."""


def create_database(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    try:
        with psycopg.connect(server + "/postgres", autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL at {server} did not answer ({' '.join(str(exc).split())}): start it "
                         "(e.g. `service postgresql start`) or set BENCH_DATABASE_URL to one that runs") from None  # fmt: skip


def setup_django(database_url: str | None = None, *, migrate: bool = True) -> None:
    """Django with the project's settings; on `database_url` where given (a PostgreSQL database is created when
    missing), migrated unless told not to."""
    if database_url:
        os.environ["DATABASE_URL"] = database_url
        if database_url.startswith(("postgres://", "postgresql://")):
            create_database(database_url)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def free_port() -> int:
    """A local port nothing listens on: one of BENCH_PORTS (`FIRST-LAST`, a shared machine's share) not handed out
    before, else any the system gives."""
    first, _, last = os.environ.get("BENCH_PORTS", "").partition("-")
    if not first:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for port in range(int(first), int(last or first) + 1):
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise BenchError(f"no free port left in BENCH_PORTS={first}-{last}")


def wait_for_port(process: subprocess.Popen, port: int, what: str, *, seconds: float = 10) -> subprocess.Popen:
    """The process once something listens on the port; stopped, and a BenchError, if it exits or takes longer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise BenchError(f"{what} did not start on port {port}")


def start_emulator(port: int, *options: str, env: dict | None = None) -> subprocess.Popen:
    """The AWS emulator (`manage.py aws_emulator`) on the port, with these command-line options."""
    command = [sys.executable, "manage.py", "aws_emulator", "--port", str(port), *options]
    process = subprocess.Popen(command, cwd=ROOT, env=os.environ if env is None else env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return wait_for_port(process, port, "the emulator")


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def load_average() -> str:
    """The machine's 1, 5 and 15-minute load averages, as the figures' context."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"
