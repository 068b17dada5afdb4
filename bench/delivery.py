"""Benchmark: delivery end to end through two real Celery workers to a local SMTP sink.

    .venv/bin/python bench/delivery.py [--emails 2000] [--rate 50] [--rate-emails 500]

Seeds a tenant with N approved emails into the database in BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/ms_bench_delivery, created and migrated if missing), starts an SMTP sink
(aiosmtpd, in this process, recording when each message's DATA arrived, its recipients and Message-ID) and two
Celery worker processes (2 pool processes each, as the tests' workers) on Redis db 14 (BENCH_REDIS_URL), then sends
the run by enqueueing its send task, as the API does: the task fans out one email_send task per email.

Pass 1, no rate limit: emails per second from the enqueue to the last arrival, and exactly-once: a recipient or a
Message-ID that arrives twice is a duplicate; every email must end sent in the database. Pass 2: a second run of
--rate-emails emails (default: 10 seconds' worth) with the tenant's send_rate_per_second set to --rate (default 50,
or half of pass 1's emails/s when that is lower: a limit the machine cannot reach proves nothing): every calendar
second of arrivals (and every sliding second) must hold at most --rate. The last line is
`delivery: N emails, X emails/s, D duplicates, rate limit held|exceeded`; it exits non-zero if any check failed.
"""

import argparse
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter

from benchdb import ROOT, BenchError, free_port, setup_django

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/ms_bench_delivery"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
LOG_DIR = ROOT / "var"
PROGRESS_SECONDS = 5  # between progress lines when the output is not a terminal
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Sink:
    """aiosmtpd's handler: takes every message and notes (arrival time, recipients, Message-ID)."""

    def __init__(self):
        self.received: list[tuple[float, tuple[str, ...], str]] = []

    async def handle_DATA(self, server, session, envelope):
        found = MESSAGE_ID.search(envelope.original_content.split(b"\r\n\r\n", 1)[0])
        self.received.append((time.time(), tuple(envelope.rcpt_tos), found.group(1).decode() if found else ""))
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000, help="approved emails in the unlimited pass")
    parser.add_argument("--rate", type=int, default=0,
                        help="the tenant's send_rate_per_second in the second pass; default: 50, or half what the "
                        "first pass reached if that is lower, so that the limit binds")  # fmt: skip
    parser.add_argument("--rate-emails", type=int, default=0, help="emails in the rate-limited pass; default 10 s")
    args = parser.parse_args()
    if args.emails < 1 or args.rate < 0 or args.rate_emails < 0:
        parser.error("--emails: at least 1; --rate and --rate-emails: 0 (chosen) or more")
    try:
        sys.exit(run(args))
    except BenchError as exc:
        print(f"delivery: FAILED: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def run(args) -> int:
    from aiosmtpd.controller import Controller

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    os.environ.update(REDIS_URL=REDIS_URL, CELERY_TASK_ALWAYS_EAGER="false", EMAIL_BACKEND="smtp",
                      EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(controller.port))  # fmt: skip
    setup_django(DATABASE_URL)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # no stale tasks or rate windows from an earlier run
    workers = [start_worker(n, controller.port) for n in (1, 2)]
    try:
        wait_ready(["delivery1", "delivery2"], workers)
        say("delivery: 2 workers ready")
        tenant = seed_tenant()
        run1 = seed_run(tenant, args.emails, "unlimited")
        first = send(run1, sink, args.emails, "pass 1 (no rate limit)")
        if not args.rate:  # a limit above what the machine reaches would hold whatever the limiter did
            args.rate = min(50, max(1, int(first["rate"] / 2)))
        args.rate_emails = args.rate_emails or args.rate * 10
        tenant.send_rate_per_second = args.rate
        tenant.save(update_fields=["send_rate_per_second"])
        run2 = seed_run(tenant, args.rate_emails, f"{args.rate} per second")
        second = send(run2, sink, args.rate_emails, f"pass 2 ({args.rate}/s)")
    finally:
        for worker, _ in workers:
            worker.terminate()
        for worker, log in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            log.close()
        controller.stop()

    duplicates = duplicates_of(sink.received)
    rate_seconds = Counter(math.floor(at) for at in second["arrivals"])
    busiest_bucket = max(rate_seconds.values())
    busiest_sliding = most_in_a_second(second["arrivals"])
    held = busiest_bucket <= args.rate and busiest_sliding <= args.rate
    elapsed = second["arrivals"][-1] - second["started"]
    say(f"delivery: pass 1: {args.emails} emails in {first['seconds']:.1f} s, {first['rate']:.1f} emails/s, "
        f"{first['not_sent']} not sent in the database")  # fmt: skip
    say(f"delivery: pass 2: {args.rate_emails} emails in {elapsed:.1f} s at {args.rate}/s: busiest calendar second "
        f"{busiest_bucket}, busiest sliding second {busiest_sliding} ({len(rate_seconds)} seconds), "
        f"{second['not_sent']} not sent in the database")  # fmt: skip
    verdict = "held" if held else "exceeded"
    print(f"delivery: {args.emails} emails, {first['rate']:.1f} emails/s, {duplicates} duplicates, rate limit {verdict}",
          flush=True)  # fmt: skip
    return 0 if held and not duplicates and not (first["not_sent"] or second["not_sent"]) else 1


def say(line: str) -> None:
    print(line, flush=True)


def start_worker(n: int, smtp_port: int) -> tuple[subprocess.Popen, object]:
    LOG_DIR.mkdir(exist_ok=True)
    log = open(LOG_DIR / f"bench-delivery-worker{n}.log", "w+")  # noqa: SIM115 - closed by run()
    command = [sys.executable, "-m", "celery", "-A", "saas", "worker", "--concurrency=2", "--loglevel=warning",
               f"--hostname=delivery{n}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, text=True)
    return process, log


def wait_ready(names: list[str], workers, timeout: float = 90.0) -> None:
    """Until every worker answers a ping (broker connected, pool started)."""
    from saas.celery import app

    deadline, answered = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        for process, log in workers:
            if process.poll() is not None:
                log.flush()
                log.seek(0)
                raise BenchError(f"a worker exited: {log.read()[-2000:]}")
        for reply in app.control.ping(timeout=0.5):
            answered.update(name.split("@", 1)[0] for name in reply)
        if set(names) <= answered:
            return
    raise BenchError(f"workers {sorted(set(names) - answered)} did not answer within {timeout:.0f} s")


def seed_tenant():
    from tenants.services import tenant_create

    slug = f"delivery-{int(time.time())}"
    return tenant_create(slug=slug, name="Delivery bench", plan="pro", brand_name="Bench Films", sender_name="Ana",
                         sender_email="hello@bench.example", postal_address="1 Bench Road")  # fmt: skip


def seed_run(tenant, n: int, label: str):
    from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail
    from datasets.models import Contact

    started = time.monotonic()
    prefix = f"{label.split()[0]}{int(time.time() * 1000) % 1_000_000}"
    contacts = Contact.dangerously_unscoped.bulk_create(
        Contact(tenant=tenant, external_id=f"{prefix}-{i}", email=f"{prefix}-{i}@example.com", first_name=f"P{i}")
        for i in range(n)
    )
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name=f"delivery {label} {prefix}")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status="completed", total=n)
    GeneratedEmail.dangerously_unscoped.bulk_create(
        (GeneratedEmail(tenant=tenant, run=run, contact=c, subject=f"Picks for {c.first_name}",
                        body="Three films for your weekend.", status=EmailStatus.APPROVED) for c in contacts),
        batch_size=1000,
    )  # fmt: skip
    say(f"delivery: seeded run #{run.pk} ({label}) with {n} approved emails in {time.monotonic() - started:.1f} s")
    return run


def send(run, sink: Sink, n: int, what: str) -> dict:
    from campaigns import tasks
    from campaigns.models import EmailStatus, GeneratedEmail

    before = len(sink.received)
    started = time.time()
    tasks.run_send_approved.delay(run.pk, run.tenant_id)
    tty, last_line = sys.stdout.isatty(), time.monotonic()
    deadline = time.monotonic() + max(120, n / 5)
    emails = GeneratedEmail.dangerously_unscoped.filter(run=run)
    while True:
        got = len(sink.received) - before
        if got >= n and not emails.filter(status__in=(EmailStatus.APPROVED, EmailStatus.SENDING)).exists():
            break
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: {got} of {n} arrived before the deadline; see var/bench-delivery-worker*.log")
        if tty:
            print(f"\rdelivery: {what}: {got}/{n} arrived", end="", flush=True)
        elif time.monotonic() - last_line >= PROGRESS_SECONDS:
            say(f"delivery: {what}: {got}/{n} arrived")
            last_line = time.monotonic()
        time.sleep(0.1)
    if tty:
        print(flush=True)
    arrivals = sorted(at for at, _, _ in sink.received[before:])
    seconds = max(arrivals[-1] - started, 1e-6)
    not_sent = emails.exclude(status=EmailStatus.SENT).count()
    return {"started": started, "arrivals": arrivals, "seconds": seconds, "rate": n / seconds, "not_sent": not_sent}


def duplicates_of(received) -> int:
    """Messages beyond the first to one recipient, or with a Message-ID already seen (counted once each)."""
    seen_to, seen_id, duplicates = set(), set(), 0
    for _, recipients, message_id in received:
        again = any(r in seen_to for r in recipients) or (message_id and message_id in seen_id)
        duplicates += bool(again)
        seen_to.update(recipients)
        seen_id.add(message_id)
    return duplicates


def most_in_a_second(arrivals: list[float]) -> int:
    """The most arrivals in any window of one second (sliding: from each arrival on); arrivals sorted."""
    most, j = 0, 0
    for i, start in enumerate(arrivals):
        while j < len(arrivals) and arrivals[j] < start + 1.0:
            j += 1
        most = max(most, j - i)
    return most


if __name__ == "__main__":
    main()
