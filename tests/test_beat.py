"""Scheduled campaigns through a real `celery beat` process (django-celery-beat's database scheduler) and a real
worker on Redis: an interval schedule fires runs on time, a tick while a run is active is recorded as skipped,
pausing stops the ticks, and deleting the campaign removes its schedule."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns.models import Campaign, CampaignRun, CampaignTick, RunStatus, TickOutcome
from campaigns.schedules import campaign_pause, campaign_schedule, schedule_name
from tenants.scoping import tenant_scope
from tests.conftest import make_catalog
from tests.workers import ROOT, Worker, database_url, wait_for

pytestmark = pytest.mark.worker
EVERY = 2  # seconds between ticks


class Beat(Worker):
    """`celery -A saas beat` on the database scheduler, waking at least every second to see schedule changes."""

    def __init__(self, *, log_path, tmp_path):
        self.log = open(log_path, "a+")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "celery", "-A", "saas", "beat", "--loglevel=debug", "--max-interval=1",
                   "-S", "django_celery_beat.schedulers:DatabaseScheduler", f"--pidfile={tmp_path / 'beat.pid'}"]  # fmt: skip
        env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )

    def sent(self, name: str) -> int:
        """How many times beat has sent this schedule's task so far (its log says so at each tick)."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().count(f"Scheduler: Sending due task {name}")


def ticks(campaign_id: int):
    return CampaignTick.dangerously_unscoped.filter(campaign_id=campaign_id).order_by("at", "pk")


def test_beat_fires_runs_on_time_skips_overlaps_and_stops_when_paused_or_deleted(
    start_worker, tenant, bedrock_settings, emulator, tmp_path
):
    make_catalog(tenant, n_contacts=2, n_items=8)
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Every two seconds", n_items=2)
    # A run already under way (as a long one would be): the ticks meanwhile are skipped, not stacked.
    blocker = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.RUNNING)
    with tenant_scope(tenant):
        campaign_schedule(campaign=campaign, every=EVERY, period="seconds")
    worker = start_worker()
    beat = Beat(log_path=tmp_path / "beat.log", tmp_path=tmp_path)
    try:
        name = schedule_name(campaign)
        skipped = ticks(campaign.pk).filter(outcome=TickOutcome.SKIPPED)
        wait_for(lambda: skipped.count() >= 2, timeout=20, worker=worker, what=f"two skipped ticks\n{beat.output()}")
        assert all(t.run_id == blocker.pk and "already has an active run" in t.detail for t in skipped)
        assert not CampaignRun.dangerously_unscoped.exclude(pk=blocker.pk).exists()

        CampaignRun.dangerously_unscoped.filter(pk=blocker.pk).update(status=RunStatus.COMPLETED)
        launched = ticks(campaign.pk).filter(outcome=TickOutcome.LAUNCHED)
        wait_for(lambda: launched.exists(), timeout=20, worker=worker, what=f"a launched tick\n{beat.output()}")
        run = launched.first().run
        done = CampaignRun.dangerously_unscoped.filter(pk=run.pk, status=RunStatus.COMPLETED)
        wait_for(done.exists, timeout=30, worker=worker, what="the scheduled run to complete")
        assert (done.get().generated, done.get().total) == (2, 2)

        # On time: consecutive ticks EVERY seconds apart (give or take beat's one-second wake-ups).
        moments = [t.at for t in ticks(campaign.pk)]
        gaps = [(b - a).total_seconds() for a, b in zip(moments, moments[1:], strict=False)]
        assert len(gaps) >= 2 and all(EVERY - 1.0 <= gap <= EVERY + 1.5 for gap in gaps), gaps

        with tenant_scope(tenant):
            campaign_pause(campaign=campaign)
        time.sleep(1.5)  # beat sees the change at its next wake-up; a tick already sent may still land
        count, sent = ticks(campaign.pk).count(), beat.sent(name)
        time.sleep(3 * EVERY)
        assert (ticks(campaign.pk).count(), beat.sent(name)) == (count, sent), "a paused schedule ticked"

        interval = PeriodicTask.objects.get(name=name).interval_id  # beat keeps rows of its own for the sweeps
        campaign.delete()
        assert not PeriodicTask.objects.filter(name=name).exists()
        assert not IntervalSchedule.objects.filter(pk=interval).exists()
        time.sleep(2 * EVERY)
        assert beat.sent(name) == sent and beat.process.poll() is None
    finally:
        beat.stop()
