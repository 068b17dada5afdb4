"""A run's progress (done, failed, rate, ETA): kept on the run row by run_refresh, and the same figures in the
API, the admin (list column, live panel, its JSON) and run_campaign --wait. The clock is the one thing faked."""

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns import generation, progress, runs, services, tasks
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunMode, RunStatus
from campaigns.runs import run_pace
from tenants.scoping import tenant_scope
from tenants.services import membership_add

API = "/api/v1"


class Clock:
    def __init__(self):
        self.now = timezone.now().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(timezone, "now", fake)
    return fake


def make_run(tenant, *, total: int, started_ago: float | None, clock: Clock, status=RunStatus.RUNNING, **fields):
    campaign, _ = Campaign.dangerously_unscoped.get_or_create(tenant=tenant, name=f"{tenant.slug} progress")
    started = clock.now - timedelta(seconds=started_ago) if started_ago is not None else None
    return CampaignRun.dangerously_unscoped.create(
        tenant=tenant, campaign=campaign, status=status, total=total, started_at=started, **fields
    )


def write(run, contacts, *, failed: int = 0) -> None:
    """Emails for these contacts, as the pipeline stores them; the last `failed` of them failed."""
    for i, contact in enumerate(contacts):
        status = EmailStatus.FAILED if i >= len(contacts) - failed else EmailStatus.DRAFT
        GeneratedEmail.dangerously_unscoped.create(
            tenant=run.tenant, run=run, contact=contact, status=status, input_tokens=100, output_tokens=50
        )


# The pace itself: plain arithmetic.


def test_pace_is_emails_per_second_since_the_start_and_the_rest_at_that_rate():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert run_pace(started_at=now - timedelta(seconds=10), now=now, processed=5, total=20) == (
        0.5,
        now + timedelta(seconds=30),
    )
    assert run_pace(started_at=now - timedelta(seconds=10), now=now, processed=20, total=20) == (2.0, None)
    assert run_pace(started_at=now - timedelta(seconds=10), now=now, processed=0, total=20) == (0.0, None)
    assert run_pace(started_at=None, now=now, processed=3, total=20) == (0.0, None)


def test_durations_read_as_hours_minutes_seconds():
    assert [progress.duration_text(s) for s in (0, 59, 60, 150, 3599, 3600, 7380)] == [
        "0s", "59s", "1m00s", "2m30s", "59m59s", "1h00m", "2h03m",
    ]  # fmt: skip


# run_refresh keeps the figures on the row.


def test_refresh_sets_rate_and_eta_from_the_emails_written(clock, tenant, catalog):
    contacts, _ = catalog
    run = make_run(tenant, total=10, started_ago=100, clock=clock)
    write(run, contacts[:4], failed=1)
    run = runs.run_refresh(run=run)
    assert (run.generated, run.failed, run.processed, run.percent) == (3, 1, 4, 40.0)
    assert run.progress_at == clock.now
    assert run.rate_per_s == pytest.approx(4 / 100)
    assert run.eta_at == clock.now + timedelta(seconds=6 / (4 / 100))
    assert (run.status, run.eta_seconds) == (RunStatus.RUNNING, 150)

    clock.advance(20)
    write(run, contacts[4:5])
    run = runs.run_refresh(run=run)
    assert run.rate_per_s == pytest.approx(5 / 120)
    assert run.eta_at == clock.now + timedelta(seconds=120)
    clock.advance(30)  # no new refresh: the ETA counts down by itself
    assert run.eta_seconds == 90


def test_completion_rates_the_run_up_to_its_finish_and_clears_the_eta(clock, tenant, catalog):
    contacts, _ = catalog
    run = make_run(tenant, total=4, started_ago=50, clock=clock, eta_at=clock.now + timedelta(seconds=5))
    write(run, contacts[:4], failed=2)
    run = runs.run_refresh(run=run)
    assert (run.status, run.finished_at, run.eta_at, run.eta_seconds) == (RunStatus.COMPLETED, clock.now, None, None)
    assert run.rate_per_s == pytest.approx(4 / (run.finished_at - run.started_at).total_seconds())
    assert run.percent == 100.0

    clock.advance(500)  # a refresh of a finished run (a regenerated email) keeps the rate it ended with
    run = runs.run_refresh(run=run)
    assert run.rate_per_s == pytest.approx(4 / 50) and run.finished_at == clock.now - timedelta(seconds=500)


def test_a_cancelled_run_shows_no_eta_and_is_not_completed_by_late_chunks(clock, tenant, catalog):
    contacts, _ = catalog
    run = make_run(tenant, total=3, started_ago=30, clock=clock)
    write(run, contacts[:1])
    run = runs.run_refresh(run=run)
    assert run.eta_at is not None and run.rate_per_s == pytest.approx(1 / 30)
    assert services.run_cancel(run=run)
    run.refresh_from_db()
    assert (run.eta_at, run.eta_seconds) == (None, None)
    clock.advance(30)
    write(run, contacts[1:3])  # chunks that were already writing when the run was cancelled
    run = runs.run_refresh(run=run)
    assert (run.status, run.processed, run.eta_at) == (RunStatus.CANCELLED, 3, None)
    assert run.rate_per_s == pytest.approx(1 / 30)


def test_a_refresh_counts_after_the_chunk_refreshing_before_it(transactional_db, tenant, catalog):
    """Two chunks finish together: the second one's refresh waits for the first one's and counts after it, so a
    count taken before the other chunk's insert can never be the one that lands last."""
    contacts, _ = catalog
    run = make_run(tenant, total=4, started_ago=10, clock=Clock())
    write(run, contacts[:2])
    locked, release, refreshed = threading.Event(), threading.Event(), []

    def first_chunk():  # in the middle of its own refresh, holding the run's row
        with transaction.atomic():
            CampaignRun.dangerously_unscoped.select_for_update(no_key=True).get(pk=run.pk)
            locked.set()
            release.wait(10)
        connection.close()

    def second_chunk():
        refreshed.append(runs.run_refresh(run=run))
        connection.close()

    holder, refresher = threading.Thread(target=first_chunk), threading.Thread(target=second_chunk)
    holder.start()
    assert locked.wait(10)
    refresher.start()
    time.sleep(0.3)  # the second refresh is waiting; meanwhile the first chunk's emails land
    write(run, contacts[2:4])
    release.set()
    holder.join(10), refresher.join(10)
    assert (refreshed[0].processed, refreshed[0].status) == (4, RunStatus.COMPLETED)


def test_counts_follow_deleted_emails(clock, tenant, catalog):
    contacts, _ = catalog
    run = make_run(tenant, total=4, started_ago=10, clock=clock)
    write(run, contacts[:3], failed=1)
    assert runs.run_refresh(run=run).processed == 3
    GeneratedEmail.dangerously_unscoped.filter(run=run, contact=contacts[0]).delete()  # its contact was erased
    run = runs.run_refresh(run=run)
    assert (run.generated, run.failed, run.processed) == (1, 1, 2)


def test_a_batch_run_shows_no_rate_while_its_job_runs(clock, tenant, catalog):
    contacts, _ = catalog
    run = make_run(tenant, total=3, started_ago=3600, clock=clock, mode=RunMode.BATCH)
    write(run, contacts[:1])  # the job's first answers, after an hour of waiting
    run = runs.run_refresh(run=run)
    assert (run.rate_per_s, run.eta_at) == (0, None)
    write(run, contacts[1:3])
    run = runs.run_refresh(run=run)
    assert run.status == RunStatus.COMPLETED and run.rate_per_s == pytest.approx(3 / 3600)


def test_nothing_written_yet_means_no_rate_and_no_eta(clock, tenant, catalog):
    run = runs.run_refresh(run=make_run(tenant, total=5, started_ago=20, clock=clock))
    assert (run.rate_per_s, run.eta_at, run.eta_seconds, run.percent) == (0, None, None, 0.0)
    assert run.progress_at == clock.now


def test_each_chunk_of_a_real_run_moves_the_progress(bedrock_settings, clock, scoped, tenant, catalog):
    bedrock_settings.CAMPAIGN_CHUNK_SIZE = 2
    campaign = Campaign.objects.create(tenant=tenant, name="chunked")
    run = services.campaign_launch(campaign=campaign)
    chunks = services.run_start(run=run)
    assert len(chunks) == 3
    seen = []
    for chunk in chunks:
        clock.advance(10)
        generation.run_generate_chunk(run=run, contact_ids=chunk)
        run.refresh_from_db()
        seen.append((run.status, run.processed, run.rate_per_s, run.eta_seconds))
    assert seen == [
        (RunStatus.RUNNING, 2, pytest.approx(0.2), 20),
        (RunStatus.RUNNING, 4, pytest.approx(0.2), 10),
        (RunStatus.COMPLETED, 6, pytest.approx(0.2), None),
    ]


# The API.


def test_the_api_shows_the_runs_progress(clock, owner_api, tenant, catalog):
    contacts, _ = catalog
    run = make_run(tenant, total=6, started_ago=60, clock=clock)
    write(run, contacts[:3])
    run = runs.run_refresh(run=run)
    clock.advance(5)
    body = owner_api.get(f"{API}/runs/{run.pk}/").json()
    assert (body["processed"], body["percent"], body["rate_per_s"]) == (3, 50.0, pytest.approx(0.05))
    assert datetime.fromisoformat(body["eta_at"]) == run.eta_at == run.progress_at + timedelta(seconds=60)
    assert datetime.fromisoformat(body["progress_at"]) == run.progress_at
    assert body["eta_seconds"] == 55
    listed = owner_api.get(f"{API}/runs/").json()["results"][0]
    assert (listed["id"], listed["eta_seconds"]) == (run.pk, 55)


# The admin.


@pytest.fixture
def two_runs(clock, tenant, other_tenant, catalog, other_catalog):
    """A running run in each tenant: 4 of 10 written in 100 s (2.4/min, 2m30s to go) and theirs."""
    mine = make_run(tenant, total=10, started_ago=100, clock=clock)
    write(mine, catalog[0][:4])
    theirs = make_run(other_tenant, total=3, started_ago=10, clock=clock)
    write(theirs, other_catalog[0][:1])
    return runs.run_refresh(run=mine), runs.run_refresh(run=theirs)


def progress_url(run) -> str:
    return reverse("admin:campaigns_campaignrun_progress", args=[run.pk])


def test_admin_list_shows_a_progress_bar_with_rate_and_eta(staff_client, two_runs):
    page = staff_client.get(reverse("admin:campaigns_campaignrun_changelist")).content.decode()
    assert '<progress max="10" value="4"' in page
    assert "4 / 10 (40.0%) · 2.4/min · ETA 2m30s" in page
    assert '<progress max="3" value="1"' not in page  # the other tenant's run is not listed


def test_admin_progress_json_serves_the_members_own_run(clock, staff_client, two_runs):
    mine, _ = two_runs
    clock.advance(10)
    body = staff_client.get(progress_url(mine)).json()
    assert (body["id"], body["status"], body["active"]) == (mine.pk, "running", True)
    assert (body["processed"], body["total"], body["generated"], body["failed"], body["percent"]) == (4, 10, 4, 0, 40.0)
    assert (body["rate_per_s"], body["rate_text"]) == (pytest.approx(0.04), "2.4/min")
    assert body["done_text"] == "4 / 10 (40.0%)"
    assert (body["eta_seconds"], body["eta_text"]) == (140, "2m20s")
    assert datetime.fromisoformat(body["eta_at"]) == mine.eta_at


def test_admin_progress_json_of_another_tenants_run_is_404(staff_client, two_runs):
    mine, theirs = two_runs
    assert staff_client.get(progress_url(theirs)).status_code == 404
    assert staff_client.get(progress_url(mine)).status_code == 200
    assert staff_client.get(reverse("admin:campaigns_campaignrun_changelist") + "nope/progress/").status_code == 404


def test_admin_progress_json_needs_a_staff_login(two_runs, tenant):
    mine, _ = two_runs
    anonymous = Client().get(progress_url(mine))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("admin:login"))
    not_staff = Client()
    not_staff.force_login(membership_add(tenant=tenant, username="nina", staff=False).user)
    assert not_staff.get(progress_url(mine)).status_code == 302


def test_change_page_has_a_live_panel_while_the_run_is_active(clock, staff_client, two_runs, catalog):
    mine, _ = two_runs
    change = reverse("admin:campaigns_campaignrun_change", args=[mine.pk])
    page = staff_client.get(change).content.decode()
    panel = re.search(r'<section id="run-progress".*?</section>', page, re.S).group(0)
    assert 'data-active="true"' in panel and '<progress max="10" value="4">' in panel
    assert '<dd data-field="done_text">4 / 10 (40.0%)</dd>' in panel
    assert '<dd data-field="rate_text">2.4/min</dd>' in panel and '<dd data-field="eta_text">2m30s</dd>' in panel
    assert f'<script id="run-progress-url" type="application/json">"{progress_url(mine)}"</script>' in page
    assert "setTimeout(poll, 2000)" in page and "if (run.active)" in page
    for field in re.findall(r'data-field="(\w+)"', panel):  # every figure the script redraws is in the JSON
        assert field in staff_client.get(progress_url(mine)).json()
    below = page.split("</section>", 1)[1]  # the form under the panel: no copy of a live figure to go stale there
    assert "field-campaign" in below and "field-total" in below
    assert not re.search(r"field-(generated|failed|status|input_tokens|cost_usd|rate_per_s|eta_at)\b", below)

    clock.advance(100)
    write(mine, catalog[0][4:6])
    mine.total = 6
    CampaignRun.dangerously_unscoped.filter(pk=mine.pk).update(total=6)
    runs.run_refresh(run=mine)
    page = staff_client.get(change).content.decode()
    assert 'data-active="false"' in page and '<dd data-field="status">completed</dd>' in page
    assert '<dd data-field="eta_text">-</dd>' in page and '<progress max="6" value="6">' in page
    assert '<dd data-field="done_text">6 / 6 (100.0%)</dd>' in page
    assert staff_client.get(progress_url(mine)).json()["active"] is False


# run_campaign --wait


def test_run_campaign_wait_shows_the_rows_rate_and_eta(
    bedrock_settings, clock, tenant, catalog, capsys, monkeypatch, transactional_db
):
    """A worker stand-in writes one chunk each time the watcher sleeps, 10 s apart on the clock."""
    bedrock_settings.CAMPAIGN_CHUNK_SIZE = 2
    pending = []
    monkeypatch.setattr(tasks.run_start, "delay", lambda *args: tasks.run_start(*args))
    monkeypatch.setattr(tasks.run_generate_chunk, "delay", lambda *args: pending.append(args))

    def sleep(seconds):
        clock.advance(10)
        if pending:
            tasks.run_generate_chunk(*pending.pop(0))

    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    Campaign.dangerously_unscoped.create(tenant=tenant, name="Weekly")
    call_command("run_campaign", tenant="acme", campaign="Weekly", wait=True)
    lines = capsys.readouterr().out.replace("\r", "\n").splitlines()
    shown = [re.search(r"\] (\d)/6 \(\d failed\) (\w+) .*, ([\d.]+/min), ETA (\S+)", line) for line in lines]
    assert [m.groups() for m in shown if m] == [
        ("0", "running", "0.0/min", "-"),
        ("2", "running", "12.0/min", "20s"),
        ("4", "running", "12.0/min", "10s"),
        ("6", "completed", "12.0/min", "-"),
    ]
    with tenant_scope(tenant):
        run = CampaignRun.objects.get()
    assert run.rate_per_s == pytest.approx(0.2)
    assert "30.0 s, 0.2 emails/s" in lines[-1]


# The watcher's output: redrawn in place on a terminal, a line now and then in a log.


class Stream:
    def __init__(self, *, tty: bool):
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def watch_ticks(run, monkeypatch, stream, *, seconds_per_tick: float, done_every: int) -> None:
    """Watch `run` while each sleep advances the clock and writes one more email every `done_every` ticks."""
    clock, ticks = [0.0], [0]

    def sleep(_):
        clock[0] += seconds_per_tick
        ticks[0] += 1
        done = min(ticks[0] // done_every, run.total)
        status = RunStatus.COMPLETED if done == run.total else RunStatus.RUNNING
        CampaignRun.dangerously_unscoped.filter(pk=run.pk).update(generated=done, status=status)

    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: clock[0], sleep=sleep))
    progress.watch_run(run, stream, interval=1)


def test_a_terminal_gets_one_line_redrawn_in_place(db, tenant, clock, monkeypatch):
    stream = Stream(tty=True)
    run = make_run(tenant, total=50, started_ago=0, clock=clock)
    watch_ticks(run, monkeypatch, stream, seconds_per_tick=1, done_every=1)
    assert stream.text.count("\r") == 51 and stream.text.count("\n") == 1 and "50/50" in stream.text


def test_a_log_gets_a_line_every_tenth_of_the_run(db, tenant, clock, monkeypatch):
    stream = Stream(tty=False)
    run = make_run(tenant, total=200, started_ago=0, clock=clock)
    watch_ticks(run, monkeypatch, stream, seconds_per_tick=0.1, done_every=1)
    lines = stream.text.splitlines()
    assert "\r" not in stream.text
    assert [re.search(r"\] (\d+)/200", line).group(1) for line in lines] == [str(n) for n in range(0, 201, 20)]
    assert "completed" in lines[-1]


def test_a_log_of_a_slow_run_gets_a_line_every_30_seconds(db, tenant, clock, monkeypatch):
    stream = Stream(tty=False)
    run = make_run(tenant, total=2, started_ago=0, clock=clock)
    watch_ticks(run, monkeypatch, stream, seconds_per_tick=1, done_every=100)
    elapsed = [int(re.search(r" (\d+)s elapsed", line).group(1)) for line in stream.text.splitlines()]
    assert elapsed == [0, 30, 60, 90, 100, 130, 160, 190, 200]
