"""Campaign schedules: a Celery beat PeriodicTask per scheduled campaign, on a CrontabSchedule row that is
removed once no task uses it."""

import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from campaigns.models import Campaign
from campaigns.services import CampaignError

CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
LAUNCH_TASK = "campaigns.tasks.campaign_launch"


def campaign_schedule(*, campaign: Campaign, cron: str, timezone_name: str = "UTC") -> PeriodicTask:
    """Launch the campaign on a cron schedule (Celery beat, database scheduler). Replaces an existing schedule.
    Checked before anything is written, so a refused cron leaves no rows, and only a bad cron reads "not valid"."""
    crontab = crontab_checked(cron, timezone_name)
    name = schedule_name(campaign)
    with transaction.atomic():
        crontab, _ = CrontabSchedule.objects.get_or_create(
            **{field: getattr(crontab, field) for field in CRON_FIELDS}, timezone=crontab.timezone
        )
        previous = PeriodicTask.objects.filter(name=name).values_list("crontab_id", flat=True).first()
        kwargs = json.dumps({"campaign_id": campaign.pk, "tenant_id": campaign.tenant_id})
        task, _ = PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": LAUNCH_TASK, "crontab": crontab, "enabled": True, "kwargs": kwargs}
        )
        crontabs_prune([previous])
    return task


def crontab_checked(cron: str, timezone_name: str) -> CrontabSchedule:
    """An unsaved, validated CrontabSchedule for a five-field cron expression in a time zone."""
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


def campaign_unschedule(*, campaign: Campaign) -> bool:
    return schedule_remove(tenant_id=campaign.tenant_id, campaign_id=campaign.pk)


def schedule_remove(*, tenant_id: int, campaign_id: int) -> bool:
    """Delete a campaign's schedule (also once the campaign is gone) and its crontab if nothing else uses it."""
    with transaction.atomic():
        tasks = PeriodicTask.objects.filter(name=_name(tenant_id, campaign_id))
        crontabs = list(tasks.values_list("crontab_id", flat=True))
        removed = tasks.delete()[0] > 0
        crontabs_prune(crontabs)
    return removed


def crontabs_prune(crontab_ids) -> None:
    """Remove these crontabs once no task runs on them (beat keeps shared ones, e.g. two campaigns at 9:00)."""
    ids = [pk for pk in crontab_ids if pk is not None]
    CrontabSchedule.objects.filter(pk__in=ids, periodictask__isnull=True).delete()


def schedule_name(campaign: Campaign) -> str:
    return _name(campaign.tenant_id, campaign.pk)


def _name(tenant_id: int, campaign_id: int) -> str:
    return f"campaign:{tenant_id}:{campaign_id}"
