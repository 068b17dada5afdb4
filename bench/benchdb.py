"""What the benchmarks share: their error that says what to do, and their own PostgreSQL database, made when missing.
Imported by the benchmark scripts, which run from this folder (`python bench/review.py`)."""


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
