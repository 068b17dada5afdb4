"""Benchmark: the review desk in a real browser, one keystroke per approval.

    .venv/bin/python bench/review.py [--drafts 500] [--server auto|gunicorn|runserver]

Seeds a finished run of N drafts (bench/desk_seed.py) into the database in BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/ms_bench_review, created and migrated if missing), serves the app as it is
deployed (gunicorn, DEBUG off, WhiteNoise serving the collected static files; runserver --noreload when gunicorn is
not installed), signs in headless Chromium (Debian's package, driven by Playwright) as the marketer rita, opens the
desk for the run and approves every draft by pressing `a`, waiting after each key for the next draft to be shown.

"Next draft" latency is measured in the page: from the key event's own timestamp (event.timeStamp, caught in the
capture phase before the desk's handler) to the first frame painted after the desk's root changes its
data-email-id to the next draft (a MutationObserver, then requestAnimationFrame and a task: after that frame). It
covers the N - 1 approvals that open another draft (the last one opens the empty page). The desk's own
window.deskTimings (handler start to the card in the DOM, before layout and paint) is printed beside it. A key the
page drops (no decision counted) is pressed again and counted: keystrokes per approval shows it.

At the end the database must show every draft approved, reviewed by rita, with exactly one approval line in the
audit log (EmailEvent) each; otherwise it exits non-zero and says what is wrong. The last line is
`review: N drafts, next draft p50 X ms p95 Y ms, K keystrokes per approval`. Uses Redis db 13 (BENCH_REDIS_URL).
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchdb import ROOT, BenchError, free_port, load_average, percentile, setup_django

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/ms_bench_review"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
USERNAME, PASSWORD = "rita", "pw-rita-123"  # made by bench/desk_seed.py, on the bench database only
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, and a closed network refuses it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
GUNICORN_WORKERS = 3  # as the Dockerfile runs it
KEY_WAIT_MS = 10_000  # for the next draft after a key the page took
PROGRESS_EVERY = 100
LOG = ROOT / "var" / "bench-review-server.log"

# Installed once the desk is on screen: times each `a` from its event to the frame after the next draft is shown.
INSTRUMENT = """() => {
  const root = document.getElementById("desk");
  const bench = window.reviewBench = {key: null, shown: [], frame: null, framed: [], waited: 0};
  document.addEventListener("keydown", (event) => {
    if (event.key === "a") { bench.key = {at: event.timeStamp, from: root.dataset.emailId}; }
  }, true);
  document.getElementById("desk-html").addEventListener("load", () => {
    if (bench.frame !== null) { bench.framed.push(performance.now() - bench.frame); bench.frame = null; }
  });
  new MutationObserver(() => {
    const key = bench.key, id = root.dataset.emailId;
    if (key !== null && root.dataset.state === "loading" && !key.waited) { key.waited = true; bench.waited += 1; }
    if (key === null || id === key.from) { return; }
    bench.key = null;
    bench.frame = id ? key.at : null;  // the email's own document in its iframe loads after
    requestAnimationFrame(() => setTimeout(() => bench.shown.push({id: id, ms: performance.now() - key.at})));
  }).observe(root, {attributes: true, attributeFilter: ["data-email-id", "data-state"]});
}"""
SHOWN = """([count, from]) => {
  const root = document.getElementById("desk");
  return window.reviewBench.shown.length >= count && root.dataset.emailId !== from
    && (root.dataset.state === "ready" || root.dataset.state === "empty");
}"""
DECIDED = """() => {
  const match = /(\\d+) decided here/.exec(document.getElementById("desk-position").textContent);
  return match ? Number(match[1]) : 0;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=500)
    parser.add_argument("--server", choices=["auto", "gunicorn", "runserver"], default="auto",
                        help="auto: gunicorn when it is installed, as deployed; else runserver --noreload")  # fmt: skip
    args = parser.parse_args()
    if args.drafts < 2:
        parser.error("--drafts: at least 2")
    try:
        run(args)
    except BenchError as exc:
        print(f"review: FAILED: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def run(args) -> None:
    check_browser()
    server_kind = pick_server(args.server)
    setup_django(DATABASE_URL)
    from bench.desk_seed import seed

    started = time.monotonic()
    tenant, run_ = seed(n_drafts=args.drafts)
    print(f"review: seeded run #{run_.pk} with {args.drafts} drafts in {time.monotonic() - started:.1f} s", flush=True)
    port = free_port()
    env = server_env(port)
    collect_static(env)
    server = start_server(server_kind, port, env)
    try:
        result = review(f"http://127.0.0.1:{port}", run_.pk, args.drafts)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    verify(run_, args.drafts)
    report(args.drafts, result, server_kind)


def check_browser() -> None:
    if not CHROMIUM.exists():
        raise BenchError(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y "
                         "--no-install-recommends chromium); `playwright install` does not work here")  # fmt: skip
    if importlib.util.find_spec("playwright") is None:
        raise BenchError("Playwright is not installed in this Python: .venv/bin/pip install -e '.[dev]'")


def pick_server(choice: str) -> str:
    has_gunicorn = importlib.util.find_spec("gunicorn") is not None
    if choice == "gunicorn" and not has_gunicorn:
        raise BenchError("gunicorn is not installed: .venv/bin/pip install gunicorn==23.0.0 (as the Dockerfile "
                         "does), or pass --server runserver")  # fmt: skip
    if choice == "auto":
        choice = "gunicorn" if has_gunicorn else "runserver"
        if not has_gunicorn:
            print("review: gunicorn is not installed (.venv/bin/pip install gunicorn==23.0.0, as the Dockerfile "
                  "does); serving with runserver --noreload instead", flush=True)  # fmt: skip
    return choice


def server_env(port: int) -> dict:
    """As deployed: DEBUG off, WhiteNoise serving what collectstatic gathered (into a folder of the bench's own)."""
    return {**os.environ, "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "DJANGO_DEBUG": "false",
            "SECRET_KEY": "bench-review-only", "SITE_URL": f"http://127.0.0.1:{port}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "STATIC_ROOT": str(ROOT / "var" / "bench-review-static"),
            "LOG_LEVEL": "WARNING"}  # fmt: skip


def collect_static(env: dict) -> None:
    command = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise BenchError(f"collectstatic failed:\n{done.stderr.strip()[-2000:]}")


def start_server(kind: str, port: int, env: dict) -> subprocess.Popen:
    if kind == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "saas.wsgi:application", "--bind", f"127.0.0.1:{port}",
                   "--workers", str(GUNICORN_WORKERS), "--access-logfile", "-",
                   "--access-logformat", '%(t)s "%(r)s" %(s)s %(b)s %(M)sms']  # fmt: skip
    else:
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    LOG.parent.mkdir(exist_ok=True)
    with open(LOG, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{kind} exited with {process.returncode} before answering; its log is {LOG}:\n"
                             + LOG.read_text()[-2000:])  # fmt: skip
        try:
            with urllib.request.urlopen(url + "/admin/login/", timeout=2) as response:
                if response.status == 200:
                    break
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    else:
        process.terminate()
        raise BenchError(f"{kind} did not answer {url}/admin/login/ within 60 s; see {LOG}")
    try:
        urllib.request.urlopen(url + "/static/campaigns/desk.js", timeout=5).close()
    except (OSError, urllib.error.URLError) as exc:
        process.terminate()
        raise BenchError(f"{url}/static/campaigns/desk.js is not served ({exc}): WhiteNoise serves STATIC_ROOT "
                         f"({env['STATIC_ROOT']}), which collectstatic fills; see {LOG}") from None  # fmt: skip
    print(f"review: {kind} at {url} (DEBUG off), log {LOG.relative_to(ROOT)}", flush=True)
    return process


def review(base: str, run_id: int, n: int) -> dict:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    requests = {"decide": [], "cards": [], "failed": []}

    def finished(request):
        kind = "decide" if request.url.endswith("/decide/") else "cards" if "/desk/cards/" in request.url else None
        if kind:
            response = request.response()
            requests[kind].append((response.status if response else 0, request.timing["responseEnd"]))

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            raise BenchError(f"Chromium did not start: {exc}") from None
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("requestfinished", finished)
            page.on("requestfailed", lambda request: requests["failed"].append(f"{request.method} {request.url}"))
            page.goto(f"{base}/admin/campaigns/generatedemail/desk/?run={run_id}")
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            try:
                page.wait_for_selector("#desk[data-state=ready][data-email-id]", timeout=30_000)
            except PlaywrightTimeout:
                raise BenchError(f"the desk did not show a draft within 30 s (at {page.url}: "
                                 f"{page.locator('body').inner_text()[:300]!r}); see {LOG}") from None  # fmt: skip
            position = page.locator("#desk-position").inner_text()
            if f" of {n} " not in position:
                raise BenchError(f"the desk's queue is not the {n} seeded drafts: {position!r}")
            page.evaluate(INSTRUMENT)
            keystrokes, latencies, current = 0, [], page.locator("#desk").get_attribute("data-email-id")
            started = time.monotonic()
            for done in range(1, n + 1):
                keystrokes += press_until_decided(page, done, PlaywrightTimeout)
                try:
                    page.wait_for_function(SHOWN, arg=[done, current], timeout=KEY_WAIT_MS)
                except PlaywrightTimeout:
                    raise BenchError(f"approval {done}: draft #{current} was approved but the next draft was not "
                                     f"shown within {KEY_WAIT_MS} ms; see {LOG}") from None  # fmt: skip
                shown = page.evaluate("(i) => window.reviewBench.shown[i]", done - 1)
                if shown["id"]:
                    latencies.append(shown["ms"])
                current = shown["id"]
                if done % PROGRESS_EVERY == 0 or done == n:
                    print(f"review: {done}/{n} approved, p50 so far {statistics.median(latencies):.0f} ms", flush=True)
            elapsed = time.monotonic() - started
            settle(page, requests, n)
            message = page.locator("#desk-message")
            if message.is_visible():
                raise BenchError(f"the desk says: {message.inner_text()!r}")
            if page.locator("#desk").get_attribute("data-state") != "empty":
                raise BenchError("the desk does not say that nothing is left to review after the last approval")
            desk_timings = page.evaluate("window.deskTimings")
            framed, waited = page.evaluate("[window.reviewBench.framed, window.reviewBench.waited]")
        finally:
            browser.close()
    return {"latencies": latencies, "keystrokes": keystrokes, "elapsed": elapsed, "desk_timings": desk_timings,
            "framed": framed, "waited": waited, "requests": requests}  # fmt: skip


def press_until_decided(page, done: int, timeout_error) -> int:
    """Press `a` until the desk counts the decision (it ignores a key while the draft is still loading): the
    keystrokes it took."""
    for keystrokes in range(1, 4):
        page.keyboard.press("a")
        try:
            page.wait_for_function("(n) => (" + DECIDED + ")() >= n", arg=done, timeout=KEY_WAIT_MS)
            return keystrokes
        except timeout_error:
            continue
    raise BenchError(f"approval {done}: the desk took none of 3 presses of `a` (it says "
                     f"{page.locator('#desk-position').inner_text()!r}); see {LOG}")  # fmt: skip


def settle(page, requests: dict, n: int) -> None:
    """Wait for the decisions the page posts in the background to be answered."""
    deadline = time.monotonic() + 30
    while len(requests["decide"]) < n and not requests["failed"] and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    if requests["failed"]:
        raise BenchError(f"{len(requests['failed'])} requests failed, first {requests['failed'][0]}; see {LOG}")
    refused = [status for status, _ in requests["decide"] if status != 200]
    if len(requests["decide"]) < n or refused:
        raise BenchError(f"{len(requests['decide'])} of {n} decisions answered, {len(refused)} not with 200 "
                         f"({sorted(set(refused))}); see {LOG}")  # fmt: skip


def verify(run, n: int) -> None:
    from django.db.models import Count

    from campaigns.models import EmailEvent, EmailStatus, EventKind, GeneratedEmail

    emails = GeneratedEmail.dangerously_unscoped.filter(run=run)
    total = emails.count()
    approved = emails.filter(status=EmailStatus.APPROVED).count()
    by_rita = emails.filter(status=EmailStatus.APPROVED, reviewed_by=USERNAME).count()
    events = EmailEvent.dangerously_unscoped.filter(email__run=run, kind=EventKind.APPROVED)
    per_email = dict(events.filter(actor=USERNAME).values_list("email_id").annotate(c=Count("pk")))
    once = sum(1 for pk in emails.values_list("pk", flat=True) if per_email.get(pk) == 1)
    problems = []
    if total != n:
        problems.append(f"the run has {total} emails, not {n}")
    if approved != n:
        problems.append(f"{approved} of {n} drafts are approved")
    if by_rita != n:
        problems.append(f"{by_rita} of {n} were approved by {USERNAME}")
    if once != n or events.count() != n:
        problems.append(f"{once} of {n} have exactly one approval line by {USERNAME} in the audit log "
                        f"({events.count()} approval lines in all)")  # fmt: skip
    if problems:
        raise BenchError("the database does not show the review: " + "; ".join(problems))
    print(f"review: database: {n}/{n} approved by {USERNAME}, {n} approval lines in the audit log", flush=True)


def report(n: int, result: dict, server_kind: str) -> None:
    latencies, desk, requests = result["latencies"], result["desk_timings"], result["requests"]
    decide = [ms for _, ms in requests["decide"]]
    cards = [ms for _, ms in requests["cards"]]
    print(f"review: {n} approvals in {result['elapsed']:.1f} s on {server_kind} ({os.cpu_count()} cores, load "
          f"average {load_average()}); slowest next draft {max(latencies):.0f} ms; {result['waited']} waited for "
          "their card (not fetched ahead in time)", flush=True)  # fmt: skip
    print(f"review: window.deskTimings (the desk's own: handler to card in the DOM, no paint): {len(desk)} timings, "
          f"p50 {percentile(desk, 50):.1f} ms p95 {percentile(desk, 95):.1f} ms", flush=True)  # fmt: skip
    framed = result["framed"]
    print(f"review: the email's iframe loaded (its own document, after the card): {len(framed)} loads, p50 "
          f"{percentile(framed, 50):.1f} ms p95 {percentile(framed, 95):.1f} ms after the key", flush=True)  # fmt: skip
    print(f"review: background requests: {len(decide)} decisions p50 {percentile(decide, 50):.0f} ms p95 "
          f"{percentile(decide, 95):.0f} ms, {len(cards)} card fetches p50 {percentile(cards, 50):.0f} ms p95 "
          f"{percentile(cards, 95):.0f} ms", flush=True)  # fmt: skip
    per_approval = result["keystrokes"] / n
    print(f"review: {n} drafts, next draft p50 {percentile(latencies, 50):.1f} ms p95 {percentile(latencies, 95):.1f} "
          f"ms, {per_approval:g} keystrokes per approval", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
