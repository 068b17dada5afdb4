"""Benchmark: campaign generation end to end, on PostgreSQL, Redis, real Celery workers and the AWS emulator.

    .venv/bin/python bench/generation.py --contacts 5000 --latency-ms 1000
    .venv/bin/python bench/generation.py --contacts 5000 --latency-ms 0 --profile
    .venv/bin/python bench/generation.py --contacts 2000 --latency-ms 200 --tpm 60000
    .venv/bin/python bench/generation.py --contacts 5000 --latency-ms 1000 --naive 0 --watch --screenshot /tmp/watch

Prints emails per second for the pipeline (worker processes × a thread pool per chunk) and for the naive
loop (one contact at a time, one call at a time, as in the original notebook), their ratio, the tokens used
in every minute and the busiest sliding minute (to check the rate limit), and with --profile the CPU
milliseconds per email by stage, measured in-process. Uses the database in BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/mailsaas_bench, recreated) and Redis db 12. With --watch it also serves the
admin (runserver) so the run's live progress panel can be watched, and with --screenshot it photographs that
panel in headless Chromium (Debian's package) mid-run and at the end.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from benchdb import ROOT, free_port, setup_django, start_emulator, wait_for_port

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailsaas_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
MODEL = "bedrock/nova-lite"
BATCH_BUCKET = "bench-batch"
ADMIN_USER = ADMIN_PASSWORD = "bench"  # a member of the bench tenant, on the local bench database only
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out, and a closed network refuses it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=80, help="model calls in flight per worker process")
    parser.add_argument("--chunk", type=int, default=80, help="contacts per chunk task")
    parser.add_argument("--tpm", type=int, default=0, help="tokens-per-minute limit for the model (0: none)")
    parser.add_argument("--naive", type=int, default=20, help="contacts for the naive loop (0: skip)")
    parser.add_argument("--profile", action="store_true", help="CPU ms per email by stage, in-process")
    parser.add_argument("--batch", type=float, metavar="STEP_MS", default=0,
                        help="write the run as one Bedrock batch job, the emulator's job moving one status per "
                        "STEP_MS (0: on-demand calls)")  # fmt: skip
    parser.add_argument("--watch", action="store_true", help="serve the admin to watch the run's progress live")
    parser.add_argument("--screenshot", metavar="PATH", help="with --watch: PATH-mid.png (~40%% done), PATH-end.png")
    args = parser.parse_args()

    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "LLM_BACKEND": "bedrock",
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "LLM_CONCURRENCY": str(args.concurrency), "CAMPAIGN_CHUNK_SIZE": str(args.chunk),
           "LLM_RATE_LIMITS": json.dumps({MODEL: {"tpm": args.tpm}} if args.tpm else {}), "LOG_LEVEL": "ERROR",
           "LLM_TENANT_SHARE_PERCENT": "100",  # one tenant: the account's whole quota, which the emulator meters
           "BEDROCK_BATCH_MIN_CONTACTS": "0"}  # on-demand calls: the path whose speed the issue sets  # fmt: skip
    port = free_port()
    env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] = f"http://127.0.0.1:{port}"
    if args.batch:  # the job's JSONL goes through the emulator's S3; the poll task looks every second
        env.update(BEDROCK_BATCH_MIN_CONTACTS="100", BEDROCK_BATCH_BUCKET=BATCH_BUCKET, BEDROCK_BATCH_POLL_SECONDS="1",
                   BEDROCK_BATCH_ROLE_ARN="arn:aws:iam::123456789012:role/bench-batch",
                   AWS_ENDPOINT_URL_BEDROCK=f"http://127.0.0.1:{port}", AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{port}")  # fmt: skip
    os.environ.update(env)
    setup_django(DATABASE_URL)
    tenant = prepare_tenant(args.contacts)
    # With --tpm the emulator meters the same quota on its side, as Bedrock does: a call our limiter lets through
    # too early gets a 429 there, so the throttles it counts are an independent check of the limiter.
    options = ["--latency-ms", str(args.latency_ms), "--tokens-per-minute", str(args.tpm)]
    if args.batch:
        options += ["--bucket", BATCH_BUCKET, "--status-step-ms", str(args.batch)]
    processes = [start_emulator(port, *options, env=env)]
    admin = None
    try:
        processes += [start_worker(env) for _ in range(args.workers)]
        if args.watch or args.screenshot:
            admin = AdminWatch(tenant, env, screenshot=args.screenshot)
        time.sleep(3)  # workers connect to the broker
        before = cpu_by_process(processes)
        pipeline = run_pipeline(tenant, args.contacts, admin)
        pipeline["cpu"] = {name: seconds - before.get(name, 0) for name, seconds in cpu_by_process(processes).items()}
        naive = run_naive(tenant, args.naive) if args.naive else None
        report(args, pipeline, naive, tenant)
        if args.profile:
            profile(tenant, min(args.contacts, 1000), args.concurrency)
    finally:
        servers = processes + ([admin.server] if admin else [])
        for process in servers:
            process.terminate()
        for process in servers:
            process.wait(timeout=30)


def prepare_tenant(contacts: int):
    """A synthetic tenant with `contacts` contacts, reused between runs of the same size."""
    from datasets.models import Contact
    from datasets.services import dataset_seed_synthetic
    from recommendations.services import recommender_train
    from tenants.services import tenant_create

    tenant = tenant_create(
        slug=f"bench-{contacts}",
        name="Bench",
        plan="basic",
        brand_name="Streamly",
        sender_name="Sam",
        monthly_email_quota=10**9,  # benchmarks run again and again
    )
    if not Contact.objects.for_tenant(tenant).exists():
        print(f"importing a synthetic tenant with {contacts} contacts …", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            dataset_seed_synthetic(
                tenant=tenant, directory=Path(tmp), n_contacts=contacts, n_interactions=contacts * 20
            )
        recommender_train(tenant=tenant)
    return tenant


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            queue += [int(child) for child in task.read_text().split()]
    return tree


def cpu_by_process(processes: list[subprocess.Popen]) -> dict[str, float]:
    """CPU seconds so far of the emulator, the workers (with their pool processes), PostgreSQL, Redis and this
    process (the progress poller), to split the machine's CPU per email."""
    named = {"emulator": [processes[0].pid], "workers": [p for w in processes[1:] for p in process_tree(w.pid)]}
    for name, command in (("postgresql", "postgres"), ("redis", "redis-server")):
        named[name] = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/comm") if _comm(p) == command]
    cpu = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in named.items()}
    cpu["bench"] = time.process_time()
    return cpu


def _comm(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def start_worker(env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "saas", "worker", "--concurrency=1", "--loglevel=warning",
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"bench{time.monotonic_ns()}@%h"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env)


class AdminWatch:
    """--watch: the admin on runserver with a staff member of the bench tenant; with --screenshot, a headless
    Chromium that opens the run's change page once, at launch, and photographs its live panel as it moves."""

    def __init__(self, tenant, env: dict, *, screenshot: str | None):
        from tenants.models import Role
        from tenants.services import membership_add

        membership_add(tenant=tenant, username=ADMIN_USER, role=Role.OWNER, password=ADMIN_PASSWORD)
        port = free_port()
        self.url, self.screenshot, self.saved = f"http://127.0.0.1:{port}", screenshot, []
        self.finished, self.browser = threading.Event(), None
        self.server = start_admin(port, env)
        print(f"admin at {self.url}/admin/ (user {ADMIN_USER}, password {ADMIN_PASSWORD})", flush=True)

    def follow(self, run) -> None:
        from django.urls import reverse

        page = self.url + reverse("admin:campaigns_campaignrun_change", args=[run.pk])
        print(f"watch run #{run.pk} at {page}", flush=True)
        if self.screenshot:
            self.browser = threading.Thread(target=self.photograph, args=(page,), daemon=True)
            self.browser.start()

    def finish(self) -> None:
        self.finished.set()
        if self.browser:
            self.browser.join(timeout=60)
        for line in self.saved:
            print(line)

    def photograph(self, page_url: str) -> None:
        """In a thread of its own: Playwright's sync API runs an event loop, which the ORM must not share."""
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.goto(page_url)
                    page.fill("#id_username", ADMIN_USER)
                    page.fill("#id_password", ADMIN_PASSWORD)
                    page.click("input[type=submit]")
                    page.wait_for_selector("#run-progress")
                    self.shoot(page, "mid", "bar.value >= 0.4 * bar.max || panel.dataset.active === 'false'")
                    self.shoot(page, "end", "panel.dataset.active === 'false'")
                finally:
                    browser.close()
        except Exception as exc:  # the benchmark's figures matter more than its pictures
            self.saved.append(f"screenshot failed: {exc!r}")

    def shoot(self, page, name: str, condition: str) -> None:
        """Wait until the panel, redrawn by its own polling, meets the condition, then save the picture; give up
        waiting 20 s after the run has finished (its last poll is at most 2 s after that)."""
        check = ("() => { const panel = document.getElementById('run-progress'), bar = panel.querySelector('progress');"
                 f" return {condition}; }}")  # fmt: skip
        deadline = None
        while not page.evaluate(check):
            if self.finished.is_set():
                deadline = deadline or time.monotonic() + 20
                if time.monotonic() > deadline:
                    break
            page.wait_for_timeout(250)
        path = f"{self.screenshot}-{name}.png"
        page.screenshot(path=path)
        self.saved.append(f"screenshot {path}: {page.locator('#run-progress dl').inner_text()!r}")


def start_admin(port: int, env: dict) -> subprocess.Popen:
    """runserver (static files too, with the default DEBUG), its request log in var/bench-admin.log."""
    log = ROOT / "var" / "bench-admin.log"
    log.parent.mkdir(exist_ok=True)
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return wait_for_port(process, port, f"runserver (see {log})", seconds=30)


def run_pipeline(tenant, contacts: int, admin: AdminWatch | None = None) -> dict:
    import redis
    from django.db import transaction

    from campaigns import services
    from campaigns.models import Campaign, CampaignRun
    from campaigns.progress import progress_line

    redis.Redis.from_url(REDIS_URL).flushdb()
    campaign, _ = Campaign.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, name="bench", defaults={"n_items": 3}
    )
    for stale in CampaignRun.objects.for_tenant(tenant).filter(campaign=campaign, status__in=["queued", "running"]):
        services.run_cancel(run=stale)
    with transaction.atomic():
        run = services.campaign_launch(campaign=campaign, limit=contacts)
    if admin:
        admin.follow(run)
    started = time.monotonic()
    while True:
        run.refresh_from_db()
        print("\r" + progress_line(run, time.monotonic() - started), end="", flush=True)
        if run.status not in ("queued", "running"):
            break
        time.sleep(1)
    print()
    if admin:
        admin.finish()
    seconds = (run.finished_at - run.started_at).total_seconds()
    return {"run": run, "seconds": seconds, "rate": run.processed / seconds}


def run_naive(tenant, n: int) -> dict:
    """The notebook's loop: per contact, picks, genre, prompt, one blocking model call, one insert."""
    from campaigns.generation import closed, draft_prepare, draft_request, run_prompts
    from campaigns.models import Campaign
    from campaigns.validation import check_email
    from datasets.models import Contact
    from recommendations.services import favorite_genres, recommender_for
    from routing.catalog import get_model
    from routing.gateway import llm_invoke, route_for

    campaign = Campaign.objects.for_tenant(tenant).get(name="bench")
    route, prompts = route_for(tenant=tenant, task=campaign.task), run_prompts(campaign)
    spec = get_model(route.model_key)
    contacts = list(Contact.objects.for_tenant(tenant).order_by("pk")[:n])
    started = time.monotonic()
    for contact in contacts:
        picks = recommender_for(tenant).top_picks([contact], campaign.n_items)[contact.pk]
        genre = favorite_genres(tenant=tenant, contact_ids=[contact.pk])[contact.pk]
        draft = draft_prepare(
            tenant=tenant, campaign=campaign, contact=contact, picks=picks, genre=genre, prompts=prompts, route=route
        )
        request = draft_request(draft, tenant=tenant, spec=spec)
        response, record, error = llm_invoke(tenant=tenant, task=campaign.task, route=route, request=request)
        record.save()
        if error is not None:
            raise error
        check_email(closed(response.text), titles=draft.titles, signoff=tenant.signoff)
    seconds = time.monotonic() - started
    return {"seconds": seconds, "rate": n / seconds, "n": n}


def report(args, pipeline: dict, naive: dict | None, tenant) -> None:
    from django.db.models import Sum
    from django.db.models.functions import TruncMinute

    from campaigns.models import GeneratedEmail
    from routing.models import LLMCall

    run = pipeline["run"]
    print(f"\nmode: {run.mode} ({run.mode_reason}){f'; job {run.batch_status}' if run.batch_job_arn else ''}")
    print(
        f"\nlatency {args.latency_ms:.0f} ms, {args.workers} workers × {args.concurrency} calls in flight, chunks of {args.chunk}"
    )
    print(
        f"pipeline: {run.processed} emails ({run.failed} failed) in {pipeline['seconds']:.1f} s = {pipeline['rate']:.1f} emails/s"
    )
    n = max(run.processed, 1)
    cpu = pipeline["cpu"]
    print(
        f"CPU ms per email by process: {sum(cpu.values()) * 1000 / n:.2f} in all = "
        + ", ".join(f"{name} {seconds * 1000 / n:.2f}" for name, seconds in cpu.items())
    )
    if naive:
        print(f"naive loop: {naive['n']} emails in {naive['seconds']:.1f} s = {naive['rate']:.2f} emails/s")
        print(f"ratio: {pipeline['rate'] / naive['rate']:.0f}× the naive loop")
    calls = LLMCall.objects.for_tenant(tenant).filter(created_at__gte=run.started_at, created_at__lte=run.finished_at)
    per_minute = (
        calls.annotate(m=TruncMinute("created_at")).values("m").annotate(t=Sum("input_tokens") + Sum("output_tokens"))
    )
    print("tokens per calendar minute:", ", ".join(f"{row['m']:%H:%M} {row['t']}" for row in per_minute.order_by("m")))
    times = sorted((c.created_at.timestamp(), c.input_tokens + c.output_tokens) for c in calls)
    busiest, left, total = 0, 0, 0
    for ts, tokens in times:  # tokens recorded within any 60 s (by completion time)
        total += tokens
        while times[left][0] <= ts - 60:
            total -= times[left][1]
            left += 1
        busiest = max(busiest, total)
    limit = f" (limit {args.tpm})" if args.tpm else ""
    print(f"busiest sliding minute: {busiest} tokens{limit}")
    if args.tpm:
        print(f"the emulator's own tokens-per-minute meter refused {emulator_throttles(args)} calls with a 429")
    statuses = Counter(GeneratedEmail.objects.for_tenant(tenant).filter(run=run).values_list("status", flat=True))
    print("emails by status:", dict(statuses))


def emulator_throttles(args) -> int:
    import urllib.request

    url = os.environ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] + "/_emulator/requests"
    with urllib.request.urlopen(url, timeout=30) as answer:
        requests = json.load(answer)["requests"]
    return sum(1 for r in requests if r["operation"] == "Converse" and r["status"] == 429)


class StageTotals:
    """CPU and wall seconds per pipeline stage, summed over every thread of this process."""

    def __init__(self):
        self.lock, self.totals = threading.Lock(), defaultdict(lambda: [0.0, 0.0, 0])

    def __call__(self, name: str, cpu: float, wall: float) -> None:
        with self.lock:
            total = self.totals[name]
            total[0], total[1], total[2] = total[0] + cpu, total[1] + wall, total[2] + 1


def profile(tenant, n: int, concurrency: int) -> None:
    """CPU per stage in this process: the same chunk code the workers run, without Celery."""
    from django.conf import settings

    from campaigns import generation, profiling, services
    from campaigns.models import Campaign, CampaignRun

    settings.LLM_CONCURRENCY = concurrency
    campaign = Campaign.objects.for_tenant(tenant).get(name="bench")
    for stale in CampaignRun.objects.for_tenant(tenant).filter(campaign=campaign, status__in=["queued", "running"]):
        services.run_cancel(run=stale)
    run = services.campaign_launch(campaign=campaign, limit=n)
    profiling.listener = totals = StageTotals()
    cpu, wall = time.process_time(), time.monotonic()
    try:
        for chunk in services.run_start(run=run, limit=n):
            generation.run_generate_chunk(run=run, contact_ids=chunk)
    finally:
        profiling.listener = None
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    print(f"\nin-process, {n} emails: {n / wall:.0f} emails/s, {cpu * 1000 / n:.2f} CPU ms per email in this process")
    for name, (cpu_s, wall_s, _) in sorted(totals.totals.items()):
        print(f"  {name:<10} {cpu_s * 1000 / n:7.2f} CPU ms/email   {wall_s * 1000 / n:8.2f} wall ms/email")


if __name__ == "__main__":
    main()
