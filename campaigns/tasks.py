"""Celery entry points: they take ids, re-fetch inside the tenant's scope, and call services; each is named after
the service it wraps."""

import logging
import time
from dataclasses import replace

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import OperationalError

from campaigns import batch, generation, judge, runs, schedules, sending, services
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunMode, RunStatus, TickOutcome
from routing.errors import ProviderError
from tenants.models import Tenant
from tenants.scoping import tenant_scope

log = logging.getLogger(__name__)
# Worth trying again later: the network, a timeout (the rate limiter's too), the database going away.
RETRYABLE = (ConnectionError, TimeoutError, OperationalError)
RETRY = {
    "autoretry_for": RETRYABLE,
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}


def _run(run_id: int, tenant_id: int) -> CampaignRun:
    tenant = Tenant.objects.get(pk=tenant_id)
    return CampaignRun.objects.for_tenant(tenant).select_related("campaign", "tenant").get(pk=run_id)


@shared_task(acks_late=True, **RETRY)
def run_start(run_id: int, tenant_id: int, limit: int | None = None) -> int:
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        chunks = services.run_start(run=run, limit=limit)
    if run.mode == RunMode.BATCH:
        for chunk in chunks:  # one: the whole run
            run_batch_submit.delay(run_id, tenant_id, chunk)
    else:
        _write_on_demand(run_id, tenant_id, chunks)
    return len(chunks)


def _write_on_demand(run_id: int, tenant_id: int, chunks: list[list[int]]) -> None:
    """The one fan-out of on-demand writing: a run's start, and the contacts a batch job leaves to on-demand."""
    for chunk in chunks:
        run_generate_chunk.delay(run_id, tenant_id, chunk)


@shared_task(bind=True, acks_late=True, **RETRY)
def run_generate_chunk(self, run_id: int, tenant_id: int, contact_ids: list[int]) -> int:
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        try:
            written = generation.run_generate_chunk(run=run, contact_ids=contact_ids)
        except Exception as exc:
            _record_failure(run, f"chunk of {len(contact_ids)} contacts", exc)
            # Autoretry tries again, in-process too; the last try leaves every contact with an email or a reason.
            if _last_try(self, exc, eager_is_last=False):
                generation.chunk_fail(run=run, contact_ids=contact_ids, reason=f"not written: {_said(exc)}")
            raise
    judge_later(run, contact_ids)
    return written


def judge_later(run: CampaignRun, contact_ids: list[int] | None = None) -> None:
    """Queue the judge for the unjudged drafts of a chunk's contacts (all the run's: None) when JUDGE_DRAFTS is on:
    after the chunk, never inside it, so a judge that fails or waits costs the run nothing."""
    if not settings.JUDGE_DRAFTS:
        return
    emails = GeneratedEmail.objects.for_tenant(run.tenant).filter(
        run=run, judged_at__isnull=True, status__in=(EmailStatus.DRAFT, EmailStatus.APPROVED)
    )
    if contact_ids is not None:
        emails = emails.filter(contact_id__in=contact_ids)
    ids = list(emails.order_by("pk").values_list("pk", flat=True))
    for chunk in runs.run_chunks(ids):  # a whole batch run's drafts: tasks of a chunk's size, as on-demand
        emails_judge.delay(run.tenant_id, chunk)


@shared_task(bind=True, acks_late=True, **RETRY)
def emails_judge(self, tenant_id: int, email_ids: list[int]) -> int:
    """Score drafts with the draft judge and store each verdict (campaigns.judge); the drafts are claimed under the
    task's id, so a copy of the task delivered again takes them up where a dead worker left them."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        return judge.emails_judge(tenant=tenant, email_ids=email_ids, claim=self.request.id or "")


@shared_task(bind=True, acks_late=True, **RETRY)
def run_batch_submit(self, run_id: int, tenant_id: int, contact_ids: list[int]) -> None:
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        try:
            step = batch.run_batch_submit(run=run, contact_ids=contact_ids)
        except Exception as exc:
            _record_failure(run, f"preparing the batch job of {len(contact_ids)} contacts", exc)
            if not _last_try(self, exc):
                raise self.retry(exc=exc, countdown=_backoff(self)) from exc
            step = batch.run_batch_abandon(run=run, why=f"the batch job could not start: {_said(exc)}")
            if run.mode == RunMode.ON_DEMAND:  # this task left batch mode: contacts may have no record yet
                step = replace(step, on_demand=tuple(contact_ids))
    _batch_next(step, run_id, tenant_id)


@shared_task(bind=True, acks_late=True, **RETRY)
def run_batch_poll(self, run_id: int, tenant_id: int) -> None:
    """Look at a run's batch job; while it runs, again in BEDROCK_BATCH_POLL_SECONDS. On a worker the task
    re-schedules itself, so no worker is held for the hours a job can take; run in-process (no broker), where
    a countdown is ignored and re-scheduling would recurse, it waits in a loop instead."""
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        while True:
            try:
                step = batch.run_batch_poll(run=run)
            except Exception as exc:  # AWS errors are run_batch_poll's; this is e.g. the database, or the limiter
                _record_failure(run, "collecting the batch job", exc)
                if not _last_try(self, exc):
                    raise self.retry(exc=exc, countdown=_backoff(self)) from exc
                step = batch.run_batch_abandon(run=run, why=f"collecting the batch job failed: {_said(exc)}")
            if not (step.poll and self.request.is_eager):
                break
            time.sleep(settings.BEDROCK_BATCH_POLL_SECONDS)
            run.refresh_from_db()
    _batch_next(step, run_id, tenant_id)


@shared_task(bind=True, acks_late=True, **RETRY)
def run_batch_stop(self, run_id: int, tenant_id: int) -> None:
    """Stop the batch job of a run that no longer waits for it. Best effort: a failure that retrying cannot help
    is logged, not raised, so that nothing that asked for the stop fails with it."""
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        try:
            batch.run_batch_stop(run=run)
        except ProviderError as exc:
            # In-process (no broker) there is no later, and a retry would raise to the caller.
            if exc.permanent or self.request.is_eager or self.request.retries >= self.max_retries:
                log.error("batch job %s of run %s is not stopped: %s", run.batch_job_arn, run_id, exc.message)
                return
            # Throttled, or failed on AWS's side: again later, backing off as RETRY's autoretry does.
            raise self.retry(exc=exc, countdown=_backoff(self)) from exc


def _batch_next(step: batch.BatchStep, run_id: int, tenant_id: int) -> None:
    if step.stop:
        run_batch_stop.delay(run_id, tenant_id)
    _write_on_demand(run_id, tenant_id, runs.run_chunks(list(step.on_demand)))
    if step.poll:
        run_batch_poll.apply_async((run_id, tenant_id), countdown=settings.BEDROCK_BATCH_POLL_SECONDS)
    else:  # the job's records are stored: the judge reads them (the contacts left to on-demand, after their chunks)
        judge_later(_run(run_id, tenant_id))


def _last_try(task, exc: Exception, *, eager_is_last: bool = True) -> bool:
    """Whether a task's failure is final: retrying cannot help, it has no retries left, or it runs in-process
    (no broker), where a task's own retry with a countdown has no later."""
    transient = isinstance(exc, RETRYABLE) or (isinstance(exc, ProviderError) and not exc.permanent)
    in_process = eager_is_last and bool(task.request.is_eager)
    return not transient or task.request.retries >= task.max_retries or in_process


def _backoff(task) -> int:
    return get_exponential_backoff_interval(1, task.request.retries, 600, full_jitter=True)


def _said(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _record_failure(run: CampaignRun, what: str, exc: Exception) -> None:
    CampaignRun.objects.for_tenant(run.tenant).filter(pk=run.pk, status=RunStatus.RUNNING).update(
        error=f"{what} failed: {type(exc).__name__}: {exc}"[:2000]
    )


@shared_task(bind=True, acks_late=True, **RETRY)
def email_regenerate(self, email_id: int, tenant_id: int, feedback: str = "", exclude: list | None = None) -> str:
    """Write an email again (services.email_regenerate_request marked it regenerating). Acks late: a worker that
    dies mid-way leaves the message to be delivered again; the last try that fails leaves the email failed."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        emails = GeneratedEmail.objects.for_tenant(tenant).select_related("run__campaign", "run__tenant", "contact")
        email = emails.filter(pk=email_id).first()
        if email is None:  # deleted meanwhile (with its run or contact)
            return "gone"
        try:
            status = services.email_regenerate(email=email, feedback=feedback, exclude=tuple(exclude or ())).status
        except Exception as exc:
            if _last_try(self, exc, eager_is_last=False):
                services.email_regenerate_fail(email=email, reason=f"not regenerated: {_said(exc)}")
            raise
    if settings.JUDGE_DRAFTS and status in (EmailStatus.DRAFT, EmailStatus.APPROVED):
        emails_judge.delay(tenant_id, [email_id])  # regenerate_finish cleared the old verdict
    return status


@shared_task(acks_late=True, **RETRY)
def run_send_approved(run_id: int, tenant_id: int) -> int:
    """The run's send: one email_send task per approved email, enqueued in chunks (sending.run_send_approved).
    Returns how many were queued. Enqueued twice, the second fan-out finds the emails queued and adds nothing;
    a duplicate email_send task finds its email claimed or sent."""
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        return sending.run_send_approved(run=run, enqueue=_enqueue_send)


def _enqueue_send(email_id: int, tenant_id: int) -> None:
    email_send.delay(email_id, tenant_id)


@shared_task(bind=True, acks_late=True, **RETRY)
def email_send(self, email_id: int, tenant_id: int) -> str:
    """Send one email (sending.email_send): paused, outside its window or over the cap, it waits for the beat's
    sweep; a failure that may pass is retried with backoff and jitter; after the last try it stays approved with
    the reason, no longer asked to be sent (a person sends it again)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        emails = GeneratedEmail.objects.for_tenant(tenant).select_related("contact", "tenant", "run__campaign")
        email = emails.filter(pk=email_id).first()
        if email is None:  # deleted meanwhile (with its run or contact)
            return "gone"
        try:
            return sending.email_send(email=email)
        except sending.SendDeferred as exc:
            if _last_try(self, exc):
                sending.email_send_give_up(email=email)
                return EmailStatus.APPROVED  # not sent; send_error says why, and a later send tries again
            raise self.retry(exc=exc, countdown=_backoff(self)) from exc


@shared_task(acks_late=True, time_limit=300)
def emails_send_due() -> int:
    """Beat's sweep every minute (campaigns.beat): approved emails asked to be sent whose send_after has passed."""
    return sending.emails_send_due(enqueue=_enqueue_send)


@shared_task(acks_late=True, time_limit=300)
def email_claims_expire() -> int:
    """Beat's sweep (campaigns.beat): claims past their lease become unknown, for a person to resolve."""
    return sending.email_claims_expire()


@shared_task(acks_late=True, **RETRY)
def campaign_launch(campaign_id: int, tenant_id: int) -> int | None:
    """Beat's entry point for scheduled campaigns. Every tick is recorded on the campaign (CampaignTick): launched
    with its run, skipped while a run is still active (one at a time) or the schedule is paused, or failed and
    why (no audience, no quota left)."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        schedules.schedule_remove(tenant_id=tenant_id, campaign_id=campaign_id)
        return None
    with tenant_scope(tenant):
        campaign = Campaign.objects.for_tenant(tenant).filter(pk=campaign_id).first()
        if campaign is None:  # deleted without its schedule (deletion normally takes it along): stop firing
            schedules.schedule_remove(tenant_id=tenant_id, campaign_id=campaign_id)
            return None
        schedule = schedules.campaign_schedule_get(campaign=campaign)
        if schedule is not None and not schedule.enabled:  # a tick sent just before the pause
            schedules.tick_record(campaign=campaign, outcome=TickOutcome.SKIPPED, detail="the schedule is paused")
            return None
        try:
            run = services.campaign_launch(campaign=campaign)
        except services.RunStillActive as exc:
            log.info("scheduled launch of campaign %s skipped: %s", campaign_id, exc)
            schedules.tick_record(campaign=campaign, outcome=TickOutcome.SKIPPED, run=exc.run, detail=str(exc))
            return None
        except services.CampaignError as exc:
            log.warning("scheduled launch of campaign %s failed: %s", campaign_id, exc)
            schedules.tick_record(campaign=campaign, outcome=TickOutcome.FAILED, detail=str(exc))
            return None
        schedules.tick_record(
            campaign=campaign, outcome=TickOutcome.LAUNCHED, run=run, detail=f"run #{run.pk} for {run.total} contacts"
        )
        return run.pk
