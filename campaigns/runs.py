"""A run's bookkeeping, below the code that writes its emails: its counts, pace and ETA, its chunks, whether its
Bedrock batch job may still be running, and its share of the monthly quota. The workers (campaigns.generation,
campaigns.batch) and the services import it; it imports neither."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from campaigns.models import ACTIVE_RUN_STATUSES, CampaignRun, EmailStatus, GeneratedEmail, RunMode, RunStatus
from routing.providers.bedrock_batch import OVER
from tenants.services import quota_charge, quota_month, quota_release
from webhooks.events import run_completed


def run_refresh(*, run: CampaignRun) -> CampaignRun:
    """Recount the run from its emails (a retried chunk can never double-count), update its rate and ETA, and
    complete it when done; once it has ended, true its quota share up to what it wrote.

    Counted while holding the run's row lock: of two chunks finishing together, the second counts after the
    first has written, so a count taken before another chunk's insert never lands last, and only one of them
    completes the run. A run cancelled meanwhile stays cancelled; a finished run keeps the rate it ended with.
    FOR NO KEY UPDATE: the emails' inserts (which key-share the row for their foreign key) are never held up."""
    runs = CampaignRun.objects.for_tenant(run.tenant)
    with transaction.atomic():
        row = (
            runs.select_for_update(no_key=True)
            .only("status", "total", "started_at", "mode", "created_at", "quota_reserved", "quota_settled")
            .get(pk=run.pk)
        )
        now, changes = timezone.now(), _counts(run)
        processed = changes["generated"] + changes["failed"]
        changes["progress_at"] = now
        ended = row.status not in ACTIVE_RUN_STATUSES
        if row.status == RunStatus.RUNNING:
            ended = row.total <= processed
            rate, eta = run_pace(started_at=row.started_at, now=now, processed=processed, total=row.total)
            if row.mode == RunMode.BATCH and not ended:
                # Nothing is written while the job runs, then everything at once: a rate would mean nothing.
                rate, eta = 0.0, None
            changes.update(rate_per_s=rate, eta_at=None if ended else eta)
            if ended:
                changes.update(status=RunStatus.COMPLETED, finished_at=now)
                transaction.on_commit(lambda: run_completed(CampaignRun.objects.for_tenant(run.tenant).get(pk=run.pk)))
        if ended:
            changes.update(_quota_settle(run=row, tenant=run.tenant, written=processed))
        runs.filter(pk=run.pk).update(**changes)
    run.refresh_from_db()
    return run


def _counts(run: CampaignRun) -> dict:
    """The run's figures, counted from its emails."""
    stats = (
        GeneratedEmail.objects.for_tenant(run.tenant)
        .filter(run=run)
        .aggregate(
            failed=Count("pk", filter=Q(status=EmailStatus.FAILED)),
            all=Count("pk"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("cost_usd"),
        )
    )
    return {
        "generated": stats["all"] - stats["failed"],
        "failed": stats["failed"],
        "input_tokens": stats["input_tokens"] or 0,
        "output_tokens": stats["output_tokens"] or 0,
        "cost_usd": stats["cost"] or 0,
    }


def _quota_settle(*, run: CampaignRun, tenant, written: int) -> dict:
    """The quota changes of an ended run (read under its row lock, saved by the caller in the same transaction):
    the first time, what it reserved and did not write is given back; afterwards, only emails written after it
    ended (a chunk that was already running when it was cancelled) are charged. Emails deleted free nothing."""
    month = quota_month(run.created_at)
    if not run.quota_settled:
        unused = run.quota_reserved - written
        if unused > 0:
            quota_release(tenant=tenant, count=unused, month=month)
        elif unused < 0:
            quota_charge(tenant=tenant, count=-unused, month=month)
        return {"quota_reserved": written, "quota_settled": True}
    if written > run.quota_reserved:
        quota_charge(tenant=tenant, count=written - run.quota_reserved, month=month)
        return {"quota_reserved": written}
    return {}


def run_pace(*, started_at, now, processed: int, total: int) -> tuple[float, datetime | None]:
    """Emails per second since the start, and when the rest will be done at that rate (None: done or no rate)."""
    seconds = (now - started_at).total_seconds() if started_at else 0
    rate = processed / seconds if seconds > 0 else 0.0
    eta = now + timedelta(seconds=(total - processed) / rate) if rate > 0 and processed < total else None
    return rate, eta


def run_chunks(contact_ids: list[int]) -> list[list[int]]:
    """The contacts a run writes on-demand, in the chunks one task writes."""
    size = settings.CAMPAIGN_CHUNK_SIZE
    return [contact_ids[i : i + size] for i in range(0, len(contact_ids), size)]


def batch_job_running(run: CampaignRun) -> bool:
    """Whether the run has a Bedrock batch job that, as far as the run knows, can still be stopped."""
    return bool(run.batch_job_arn) and run.batch_status not in OVER
