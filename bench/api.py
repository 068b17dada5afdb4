"""Benchmark: the REST API under gunicorn, 50 concurrent clients on loopback.

    .venv/bin/python bench/api.py [--clients 50] [--seconds 30] [--think 1] [--upsert-think 10] [--workers 3]
                                  [--worker-class sync|gthread] [--threads 4] [--only NAME] [--quick]

Seeds a tenant (bench/desk_seed.py, then more contacts: 10,000 contacts with attributes, a catalog, a finished run
of 2,000 generated emails) into the database in BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/ms_bench_api, created and migrated if missing), issues an owner API key, serves
the app as deployed (gunicorn, DEBUG off, API_RATE_LIMIT_BASIC/PRO off so throttling does not shape the figures) on
127.0.0.1, and measures three scenarios, each for --seconds:

  contacts  GET /api/v1/contacts/ pages (100 rows, the default page), each client following `next` for 5 pages
  emails    GET /api/v1/emails/?run=<id> pages, the same way
  upsert    PUT /api/v1/contacts/ with 1,000 rows (existing contacts, new attributes each time: real updates);
            client i writes block i mod 10 of the 10,000 contacts

Each scenario runs twice, with --clients clients (50), each with one request in flight at a time:

  paced   what the targets are measured on (list p99 under 100 ms, a 1,000-row upsert under 1 s): every client
          pauses between its requests as a CRM integration or a locust user does, a pause drawn uniformly from
          0.5x to 1.5x a mean (locust's `between`): --think, 1 s for the list pages (50 clients offer about 50
          pages a second), --upsert-think, 10 s for the upserts (about 5 upserts, 5,000 rows, a second). Each
          client starts at a random moment in its first pause, so they do not arrive in step.
  closed  capacity: no pause at all, every client sends its next request as soon as the last is answered. On 2
          cores this saturates the server, so latency there is mostly queueing (about clients / throughput);
          the throughput is the figure to read.

The load generator (asyncio + httpx, one process) shares the cores with gunicorn and PostgreSQL. Every reply must be
a 200 (a 207 with every row updated for the upsert); anything else fails the run.

The last line is `api: contacts p50 X p99 Y ms; emails p50 X p99 Y ms; upsert-1000 p50 X p99 Y ms`, from the paced
passes; the line before it gives the closed loops' throughput. Uses Redis db 11 (BENCH_REDIS_URL).
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import benchdb
from benchdb import BenchError, free_port, load_average, percentile

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/ms_bench_api"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
SLUG = "api-bench"
CONTACTS, EMAILS, UPSERT_ROWS, BLOCKS = 10_000, 2_000, 1_000, 10
PAGES_PER_WALK = 5
LOG = ROOT / "var" / "bench-api-server.log"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="per pass (each scenario has two passes)")
    parser.add_argument("--think", type=float, default=1.0, help="paced list clients' mean pause, s")
    parser.add_argument("--upsert-think", type=float, default=10.0, help="paced upsert clients' mean pause, s")
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn processes (the Dockerfile runs 3)")
    parser.add_argument("--threads", type=int, default=4, help="threads per process with --worker-class gthread")
    parser.add_argument("--only", choices=["contacts", "emails", "upsert"], action="append",
                        help="run only these scenarios (repeatable); the summary line needs all three")  # fmt: skip
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--quick", action="store_true", help="4 s passes: a smoke run, not figures")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 4.0
    if min(args.clients, args.seconds, args.workers, args.threads) <= 0 or min(args.think, args.upsert_think) < 0:
        parser.error("--clients, --seconds, --workers and --threads must be positive, the pauses not negative")
    try:
        run(args)
    except BenchError as exc:
        print(f"api: FAILED: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def run(args) -> None:
    setup_django()
    started = time.monotonic()
    run_id, key = seed()
    print(f"api: seeded {CONTACTS} contacts and run #{run_id} with {EMAILS} emails in "
          f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
    port = args.port or free_port()
    server = start_server(args, port)
    base = f"http://127.0.0.1:{port}"
    results = {}
    try:
        for name in args.only or ["contacts", "emails", "upsert"]:
            results[name] = asyncio.run(scenario(name, base, key, run_id, args))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    report(results, args)


def setup_django() -> None:
    os.environ.setdefault("SECRET_KEY", "bench-api-only")  # the server's too: API keys are digested with it
    benchdb.setup_django(DATABASE_URL)


def seed() -> tuple[int, str]:
    """The desk's seed (2,000 contacts with a watch history, a catalog, a run of 2,000 drafts) plus 8,000 more
    contacts, every contact with attributes. Returns (run id, plain API key)."""
    import random

    from django.db import connection

    from bench.desk_seed import FIRST, LAST
    from bench.desk_seed import seed as desk_seed
    from datasets.models import Contact
    from tenants.models import ApiKey, Role

    tenant, run_ = desk_seed(n_drafts=EMAILS, slug=SLUG, username="api-bench")
    rng = random.Random(11)
    Contact.dangerously_unscoped.bulk_create(
        (
            Contact(
                tenant=tenant,
                external_id=f"c{i}",
                email=f"contact{i}@example.com",
                first_name=rng.choice(FIRST),
                last_name=rng.choice(LAST),
                age=rng.randint(18, 75),
                gender=rng.choice(["female", "male", ""]),
                locale=rng.choice(["en_GB", "en_US", "fr_FR", "de_DE"]),
            )  # fmt: skip
            for i in range(EMAILS, CONTACTS)
        ),
        batch_size=1000,
    )
    contacts = list(Contact.dangerously_unscoped.filter(tenant=tenant).only("pk", "external_id"))
    for contact in contacts:
        contact.attributes = attributes(int(contact.external_id[1:]), 0)
    Contact.dangerously_unscoped.bulk_update(contacts, ["attributes"], batch_size=1000)
    _, plain = ApiKey.objects.issue(tenant=tenant, name="bench", role=Role.OWNER)
    # What autovacuum does in time to a deployed database: without fresh statistics PostgreSQL guesses 81 rows for
    # 10,000 and sorts the tenant's contacts for every page (15 ms a page, against 0.1 ms by the index).
    with connection.cursor() as cursor:
        for table in ("datasets_contact", "campaigns_generatedemail", "tenants_apikey"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return run_.pk, plain


def attributes(i: int, round_: int) -> dict:
    return {"plan": ["free", "plus", "family"][i % 3], "country": ["GB", "US", "FR", "DE"][i % 4],
            "signup_year": 2015 + i % 11, "lifetime_value": round(3.5 * (i % 97), 2), "bench_round": round_}  # fmt: skip


def upsert_rows(block: int, round_: int) -> list[dict]:
    start = block * UPSERT_ROWS
    return [{"external_id": f"c{i}", "email": f"contact{i}@example.com", "first_name": "Bench", "age": 18 + i % 60,
             "attributes": attributes(i, round_)} for i in range(start, start + UPSERT_ROWS)]  # fmt: skip


def start_server(args, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "DJANGO_DEBUG": "false",
           "ALLOWED_HOSTS": "127.0.0.1,localhost",
           "SITE_URL": f"http://127.0.0.1:{port}", "API_RATE_LIMIT_BASIC": "off", "API_RATE_LIMIT_PRO": "off", "LOG_LEVEL": "WARNING"}  # fmt: skip
    command = [sys.executable, "-m", "gunicorn", "saas.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.workers), "--worker-class", args.worker_class, "--backlog", "2048"]  # fmt: skip
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    LOG.parent.mkdir(exist_ok=True)
    with open(LOG, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with {process.returncode} before answering; its log is {LOG}:\n"
                             + LOG.read_text()[-2000:])  # fmt: skip
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # it answers (401 without a key)
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    else:
        process.terminate()
        raise BenchError(f"gunicorn did not answer {url} within 60 s; see {LOG}")
    threads = f" x {args.threads} threads" if args.worker_class == "gthread" else ""
    print(f"api: gunicorn at 127.0.0.1:{port}, {args.workers} {args.worker_class} workers{threads}, DEBUG off, "
          f"API throttling off; log {LOG.relative_to(ROOT)}", flush=True)  # fmt: skip
    return process


class Load:
    """One pass of one scenario: latencies of the 200s, and what went wrong."""

    def __init__(self):
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.elapsed = 0.0


async def scenario(name: str, base: str, key: str, run_id: int, args) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60.0) as client:
        request = requester(name, client, run_id)
        # Warm every worker's first import paths and connection: a few requests at once, so each worker takes some.
        await asyncio.gather(*(request(i) for i in range(2 * args.workers)))
        think = args.upsert_think if name == "upsert" else args.think
        paced = await paced_loop(request, args.clients, args.seconds, think)
        check(name, "paced", paced)
        print(f"api: {name}: paced, {args.clients} clients pausing {think / 2:g}-{think * 1.5:g} s: "
              f"{len(paced.latencies) / paced.elapsed:.1f} req/s, {summary(paced.latencies)}", flush=True)  # fmt: skip
        closed = await closed_loop(request, args.clients, args.seconds)
        check(name, "closed", closed)
        rate = len(closed.latencies) / closed.elapsed
        print(f"api: {name}: closed loop (capacity), {args.clients} clients, no pause: {rate:.1f} req/s, "
              f"{summary(closed.latencies)}", flush=True)  # fmt: skip
        result = {"paced": paced, "closed": closed, "closed_rate": rate}
    return result


def requester(name: str, client, run_id: int):
    """An async function of the client's number that sends one request of the scenario and checks its reply."""
    import orjson

    walks: dict[int, tuple[str | None, int]] = {}
    rounds = {"n": 0}

    async def page(i: int, first: str):
        url, left = walks.get(i, (None, 0))
        if url is None or left == 0:
            url, left = first, PAGES_PER_WALK
        reply = await client.get(url)
        if reply.status_code == 200:
            body = orjson.loads(reply.content)  # the load generator's own parse: 4x less of the shared CPU than json
            walks[i] = (body.get("next"), left - 1)
            if not body.get("results"):
                raise BenchError(f"{url} answered an empty page")
        return reply

    async def upsert(i: int):
        rounds["n"] += 1
        reply = await client.put("/api/v1/contacts/", json={"rows": upsert_rows(i % BLOCKS, rounds["n"])})
        if reply.status_code in (200, 207):  # 207: the bulk reply, which counts rows by outcome
            body = orjson.loads(reply.content)
            if body.get("errors") or body.get("failed") or body.get("updated") != UPSERT_ROWS:
                raise BenchError(f"the upsert refused rows: {str(body)[:300]}")
        return reply

    if name == "contacts":
        return lambda i: page(i, "/api/v1/contacts/")
    if name == "emails":
        return lambda i: page(i, f"/api/v1/emails/?run={run_id}")
    return upsert


async def timed(request, i: int, load: Load, since: float | None = None) -> None:
    """Times one request from `since` (default: now)."""
    started = time.perf_counter() if since is None else since
    try:
        reply = await request(i)
    except BenchError as exc:
        load.failures.append(str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - a transport error is a failed request, said at the end
        load.failures.append(f"{type(exc).__name__}: {exc}")
        return
    ms = (time.perf_counter() - started) * 1000
    if reply.status_code in (200, 207):
        load.latencies.append(ms)
    else:
        load.failures.append(f"{reply.request.method} {reply.request.url} -> {reply.status_code} {reply.text[:200]}")


async def closed_loop(request, clients: int, seconds: float) -> Load:
    load = Load()
    started = time.perf_counter()
    stop = started + seconds

    async def client(i: int):
        while time.perf_counter() < stop:
            await timed(request, i, load)

    await asyncio.gather(*(client(i) for i in range(clients)))
    load.elapsed = time.perf_counter() - started
    return load


async def paced_loop(request, clients: int, seconds: float, think: float) -> Load:
    """Each client sends a request, waits for its reply, then pauses uniformly 0.5-1.5 x `think`; it starts at a
    random moment of its first pause. A request is timed from its send to its reply."""
    import random

    load, rng = Load(), random.Random(7)
    started = time.perf_counter()
    stop = started + seconds

    async def client(i: int):
        await asyncio.sleep(rng.uniform(0, think))
        while time.perf_counter() < stop:
            await timed(request, i, load)
            await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))

    await asyncio.gather(*(client(i) for i in range(clients)))
    load.elapsed = time.perf_counter() - started
    return load


def check(name: str, kind: str, load: Load) -> None:
    if load.failures:
        raise BenchError(f"{name} ({kind} loop): {len(load.failures)} requests failed, first: {load.failures[0]}; "
                         f"see {LOG}")  # fmt: skip
    if not load.latencies:
        raise BenchError(f"{name} ({kind} loop): no request was answered in the time")


def summary(latencies: list[float]) -> str:
    return (f"{len(latencies)} requests, p50 {percentile(latencies, 50):.0f} ms p99 {percentile(latencies, 99):.0f} "
            f"ms max {max(latencies):.0f} ms")  # fmt: skip


def report(results: dict, args) -> None:
    print(f"api: {os.cpu_count()} cores shared by gunicorn, PostgreSQL and this load generator; load average "
          f"{load_average()} at the end", flush=True)  # fmt: skip
    if set(results) != {"contacts", "emails", "upsert"}:
        return
    rates = ", ".join(f"{name} {results[name]['closed_rate']:.1f} req/s" for name in ("contacts", "emails", "upsert"))
    print(f"api: capacity (closed loop, {args.clients} clients): {rates}; below, {args.clients} paced clients "
          f"(list pauses {args.think:g} s, upsert pauses {args.upsert_think:g} s on average)", flush=True)  # fmt: skip
    parts = []
    for name, label in (("contacts", "contacts"), ("emails", "emails"), ("upsert", "upsert-1000")):
        latencies = results[name]["paced"].latencies
        parts.append(f"{label} p50 {percentile(latencies, 50):.0f} p99 {percentile(latencies, 99):.0f} ms")
    print("api: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
