"""Campaign schedules: a Celery beat PeriodicTask per scheduled campaign (database scheduler), on a CrontabSchedule
(cron, in a time zone) or an IntervalSchedule (every N seconds/minutes/hours/days); schedule rows no task uses are
removed. Pausing and resuming is the task's `enabled` flag; the task goes with its campaign (campaigns.signals)."""

import json
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from campaigns.models import ACTIVE_RUN_STATUSES, Campaign, CampaignRun, CampaignTick
from campaigns.services import CampaignError, run_cancel

CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
PERIODS = (IntervalSchedule.SECONDS, IntervalSchedule.MINUTES, IntervalSchedule.HOURS, IntervalSchedule.DAYS)
MAX_EVERY = 100_000
LAUNCH_TASK = "campaigns.tasks.campaign_launch"


@dataclass(frozen=True)
class Schedule:
    """A campaign's schedule as people read it (the admin page, the API)."""

    kind: str  # "cron" or "interval"
    enabled: bool
    cron: str | None = None
    timezone: str | None = None  # cron only: every N minutes is the same in every time zone
    every: int | None = None
    period: str | None = None
    last_run_at: datetime | None = None
    total_run_count: int = 0

    def __str__(self) -> str:
        when = f"cron {self.cron} ({self.timezone})" if self.kind == "cron" else f"every {self.every} {self.period}"
        return when if self.enabled else f"{when}, paused"

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "enabled": self.enabled, "cron": self.cron, "timezone": self.timezone,
            "every": self.every, "period": self.period, "last_run_at": self.last_run_at,
            "total_run_count": self.total_run_count, "text": str(self),
        }  # fmt: skip


def campaign_schedule(
    *,
    campaign: Campaign,
    cron: str | None = None,
    timezone_name: str = "UTC",
    every: int | None = None,
    period: str = IntervalSchedule.MINUTES,
) -> PeriodicTask:
    """Launch the campaign on a cron schedule in a time zone, or every N periods (Celery beat, database scheduler).
    Replaces an existing schedule, and resumes it if it was paused. Checked before anything is written, so a
    refused schedule leaves no rows, and the error names the field that is wrong."""
    if (cron is None) == (every is None):
        raise CampaignError("a schedule is either a cron expression or an interval (every N minutes), not both")
    if cron is not None:
        crontab, interval = crontab_checked(cron, timezone_name), None
    else:
        crontab, interval = None, interval_checked(every, period)
    name = schedule_name(campaign)
    with transaction.atomic():
        if crontab is not None:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                **{field: getattr(crontab, field) for field in CRON_FIELDS}, timezone=crontab.timezone
            )
        else:
            interval, _ = IntervalSchedule.objects.get_or_create(every=interval.every, period=interval.period)
        previous = PeriodicTask.objects.filter(name=name).values_list("crontab_id", "interval_id").first()
        task = PeriodicTask.objects.filter(name=name).first() or PeriodicTask(name=name)
        task.task, task.crontab, task.interval, task.enabled = LAUNCH_TASK, crontab, interval, True
        task.kwargs = json.dumps({"campaign_id": campaign.pk, "tenant_id": campaign.tenant_id})
        task.description = _description(campaign)
        task.save()
        if previous:
            crontabs_prune([previous[0]])
            intervals_prune([previous[1]])
    return task


def crontab_checked(cron: str, timezone_name: str) -> CrontabSchedule:
    """An unsaved, validated CrontabSchedule for a five-field cron expression in a time zone."""
    if not isinstance(cron, str):
        raise CampaignError("cron must be a string such as '0 9 * * 1'")
    fields = cron.split()
    if len(fields) != len(CRON_FIELDS):
        raise CampaignError(f"cron {cron!r} needs 5 fields: minute hour day-of-month month day-of-week")
    crontab, problems = CrontabSchedule(**dict(zip(CRON_FIELDS, fields, strict=True))), {}
    try:
        crontab.timezone = timezone_name or None  # the field checks the name as it is set
    except ValidationError as exc:
        problems["timezone"] = exc.messages
    try:
        crontab.full_clean(exclude=list(problems))
    except ValidationError as exc:
        problems.update(exc.message_dict)
    if problems:
        said = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in sorted(problems.items()))
        raise CampaignError(f"cron {cron!r} in time zone {timezone_name!r} is not valid: {said}")
    return crontab


def interval_checked(every, period: str) -> IntervalSchedule:
    """An unsaved IntervalSchedule: every N (a whole number, 1 to MAX_EVERY) seconds, minutes, hours or days."""
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= MAX_EVERY:
        raise CampaignError(f"interval every={every!r} is not valid: every: a whole number from 1 to {MAX_EVERY}")
    if period not in PERIODS:
        raise CampaignError(f"interval period={period!r} is not valid: period: one of {', '.join(PERIODS)}")
    return IntervalSchedule(every=every, period=period)


def campaign_schedule_get(*, campaign: Campaign) -> Schedule | None:
    task = PeriodicTask.objects.select_related("crontab", "interval").filter(name=schedule_name(campaign)).first()
    if task is None:
        return None
    common = {"enabled": task.enabled, "last_run_at": task.last_run_at, "total_run_count": task.total_run_count}
    if task.crontab is not None:
        c = task.crontab
        cron = " ".join(getattr(c, field) for field in CRON_FIELDS)
        return Schedule(kind="cron", cron=cron, timezone=str(c.timezone), **common)
    if task.interval is not None:
        return Schedule(kind="interval", every=task.interval.every, period=task.interval.period, **common)
    return None


def campaign_pause(*, campaign: Campaign) -> bool:
    """Stop the campaign's ticks, keeping its schedule; False if it has none."""
    return _set_enabled(campaign, False)


def campaign_resume(*, campaign: Campaign) -> bool:
    return _set_enabled(campaign, True)


def _set_enabled(campaign: Campaign, enabled: bool) -> bool:
    with transaction.atomic():
        task = PeriodicTask.objects.select_for_update().filter(name=schedule_name(campaign)).first()
        if task is None:
            return False
        if task.enabled != enabled:
            task.enabled = enabled
            task.save()  # save(), not update(): beat notices the change through PeriodicTasks.changed
    return True


@dataclass(frozen=True)
class Cancelled:
    runs: list[int]  # the runs stopped now
    schedule_paused: bool  # the schedule was ticking and is paused now (kept: resume it, or remove it)


def campaign_cancel(*, campaign: Campaign) -> Cancelled:
    """Stop everything the campaign has in motion: its active run (run_cancel: what is written stays, the rest of
    its quota comes back) and its schedule's ticks (paused, not removed). Nothing is sent by this: emails
    already asked to be sent are their run's."""
    active = CampaignRun.objects.for_tenant(campaign.tenant).filter(campaign=campaign, status__in=ACTIVE_RUN_STATUSES)
    runs = [run.pk for run in active if run_cancel(run=run)]
    schedule = campaign_schedule_get(campaign=campaign)
    paused = bool(schedule and schedule.enabled and campaign_pause(campaign=campaign))
    return Cancelled(runs=runs, schedule_paused=paused)


def campaign_schedule_sync(*, campaign: Campaign) -> None:
    """The campaign changed: its schedule's description follows (the beat admin lists tasks by it)."""
    task = PeriodicTask.objects.filter(name=schedule_name(campaign)).first()
    if task is not None and task.description != _description(campaign):
        task.description = _description(campaign)
        task.save()


def tick_record(*, campaign: Campaign, outcome: str, run: CampaignRun | None = None, detail: str = "") -> CampaignTick:
    """What one firing of the schedule did, kept on the campaign (its admin page, the API's ticks)."""
    return CampaignTick.objects.for_tenant(campaign.tenant).create(
        tenant=campaign.tenant, campaign=campaign, outcome=outcome, run=run, detail=detail[:500]
    )


def campaign_unschedule(*, campaign: Campaign) -> bool:
    return schedule_remove(tenant_id=campaign.tenant_id, campaign_id=campaign.pk)


def schedule_remove(*, tenant_id: int, campaign_id: int) -> bool:
    """Delete a campaign's schedule (also once the campaign is gone) and its schedule rows if nothing else uses
    them."""
    with transaction.atomic():
        tasks = PeriodicTask.objects.filter(name=_name(tenant_id, campaign_id))
        used = list(tasks.values_list("crontab_id", "interval_id"))
        removed = tasks.delete()[0] > 0
        crontabs_prune([crontab for crontab, _ in used])
        intervals_prune([interval for _, interval in used])
    return removed


def crontabs_prune(crontab_ids) -> None:
    """Remove these crontabs once no task runs on them (beat keeps shared ones, e.g. two campaigns at 9:00)."""
    ids = [pk for pk in crontab_ids if pk is not None]
    CrontabSchedule.objects.filter(pk__in=ids, periodictask__isnull=True).delete()


def intervals_prune(interval_ids) -> None:
    ids = [pk for pk in interval_ids if pk is not None]
    IntervalSchedule.objects.filter(pk__in=ids, periodictask__isnull=True).delete()


def schedule_name(campaign: Campaign) -> str:
    return _name(campaign.tenant_id, campaign.pk)


def _name(tenant_id: int, campaign_id: int) -> str:
    return f"campaign:{tenant_id}:{campaign_id}"


def _description(campaign: Campaign) -> str:
    return f"launches campaign {campaign.name!r}"
