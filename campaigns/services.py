"""Campaign workflows: launch a run, track it, regenerate and send its emails (exactly once).
Writing the emails themselves lives in campaigns.generation."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from campaigns.batch import job_running, run_mode_choose
from campaigns.generation import jobs_prepare, jobs_write
from campaigns.models import (
    ACTIVE_RUN_STATUSES,
    Campaign,
    CampaignRun,
    EmailStatus,
    GeneratedEmail,
    InvalidTransition,
    RunMode,
    RunStatus,
)  # fmt: skip
from datasets.models import Contact
from recommendations.services import current_engine
from routing.gateway import route_for
from routing.models import LLMCall


class CampaignError(Exception):
    pass


def audience(campaign: Campaign):
    """The contacts a run of this campaign writes to: subscribed, matching the campaign's filter."""
    qs = Contact.objects.for_tenant(campaign.tenant).filter(unsubscribed=False)
    rules = campaign.audience or {}
    if rules.get("locale"):
        qs = qs.filter(locale=rules["locale"])
    if rules.get("gender"):
        qs = qs.filter(gender=rules["gender"])
    if rules.get("min_age") is not None:
        qs = qs.filter(age__gte=int(rules["min_age"]))
    if rules.get("max_age") is not None:
        qs = qs.filter(age__lte=int(rules["max_age"]))
    return qs.order_by("pk")


def campaign_launch(*, campaign: Campaign, limit: int | None = None) -> CampaignRun:
    """Create a queued run and start it after commit. One active run per campaign."""
    tenant = campaign.tenant
    size = audience(campaign).count()
    if limit is not None:
        size = min(size, limit)
    if size == 0:
        raise CampaignError(f"campaign {campaign.name!r} has no subscribed contacts in its audience")
    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = GeneratedEmail.objects.for_tenant(tenant).filter(created_at__gte=month_start).count()
    if used + size > tenant.monthly_email_quota:
        raise CampaignError(
            f"this run needs {size} emails but only {max(tenant.monthly_email_quota - used, 0)} remain in "
            f"{tenant.name}'s monthly quota of {tenant.monthly_email_quota}; narrow the audience or upgrade the plan"
        )
    try:
        with transaction.atomic():
            run = CampaignRun.objects.for_tenant(tenant).create(tenant=tenant, campaign=campaign, total=size)
    except IntegrityError:
        active = (
            CampaignRun.objects.for_tenant(tenant).filter(campaign=campaign, status__in=ACTIVE_RUN_STATUSES).first()
        )
        raise CampaignError(
            f"campaign {campaign.name!r} already has an active run (#{active.pk if active else '?'})"
        ) from None
    from campaigns import tasks

    transaction.on_commit(lambda: tasks.start_run.delay(run.pk, tenant.pk, limit))
    return run


def run_start(*, run: CampaignRun, limit: int | None = None) -> list[list[int]]:
    """Move a queued run to running, choose how it is written, and return its audience in chunks (empty if the
    run moved on); a batch run is one chunk."""
    claimed = CampaignRun.objects.for_tenant(run.tenant).filter(pk=run.pk, status=RunStatus.QUEUED)
    ids = list(audience(run.campaign).values_list("pk", flat=True)[:limit])
    if not claimed.update(status=RunStatus.RUNNING, started_at=timezone.now(), total=len(ids)):
        return []
    run.refresh_from_db()
    if run.tenant.recommender == "embedded":
        current_engine(run.tenant)  # train once here, not in every parallel chunk of a tenant without a model
    if run_mode_choose(run=run) == RunMode.BATCH:
        return [ids]  # one chunk: the whole run is one Bedrock batch job (campaigns.batch)
    chunks = run_chunks(ids)
    if not chunks:
        run_refresh(run=run)
    return chunks


def run_chunks(contact_ids: list[int]) -> list[list[int]]:
    size = settings.CAMPAIGN_CHUNK_SIZE
    return [contact_ids[i : i + size] for i in range(0, len(contact_ids), size)]


REGENERATABLE = (EmailStatus.FAILED, EmailStatus.REJECTED, EmailStatus.DRAFT)


def email_regenerate(*, email: GeneratedEmail) -> GeneratedEmail:
    """Write a failed, rejected or unreviewed email again, with fresh picks. A concurrent review wins."""
    if email.status not in REGENERATABLE:
        raise InvalidTransition(
            f"email {email.pk} is {email.status}; only failed, rejected or draft emails can be regenerated"
        )
    run = email.run
    route = route_for(tenant=run.tenant, task=run.campaign.task)
    (job,) = jobs_prepare(run=run, contacts=[email.contact], route=route)
    jobs_write([job], run=run, route=route)
    LLMCall.objects.for_tenant(run.tenant).bulk_create(job.usage_records)
    reset = {"subject": "", "body": "", "failure_reason": "", "reject_reason": "", "edited": False,
             "reviewed_by": "", "reviewed_at": None}  # fmt: skip
    email._transition(REGENERATABLE, **{**reset, **job.fields})
    run_refresh(run=run)
    return email


def run_cancel(*, run: CampaignRun) -> bool:
    """Stop a queued or running run: chunks not yet started write nothing, and its Bedrock batch job is stopped
    (by a task after commit: the caller never waits on AWS). Emails already written stay."""
    cancelled = (
        CampaignRun.objects.for_tenant(run.tenant)
        .filter(pk=run.pk, status__in=ACTIVE_RUN_STATUSES)
        .update(status=RunStatus.CANCELLED, finished_at=timezone.now(), eta_at=None)
    )
    if cancelled:
        run.refresh_from_db(fields=["batch_job_arn", "batch_status"])  # a job may have started since run was read
        if job_running(run):
            from campaigns import tasks

            tasks.batch_stop.delay_on_commit(run.pk, run.tenant_id)
    return bool(cancelled)


def run_refresh(*, run: CampaignRun) -> CampaignRun:
    """Recount the run from its emails (a retried chunk can never double-count), update its rate and ETA, and
    complete it when done.

    Counted while holding the run's row lock: of two chunks finishing together, the second counts after the
    first has written, so a count taken before another chunk's insert never lands last, and only one of them
    completes the run. A run cancelled meanwhile stays cancelled; a finished run keeps the rate it ended with.
    FOR NO KEY UPDATE: the emails' inserts (which key-share the row for their foreign key) are never held up."""
    runs = CampaignRun.objects.for_tenant(run.tenant)
    with transaction.atomic():
        row = runs.select_for_update(no_key=True).only("status", "total", "started_at", "mode").get(pk=run.pk)
        stats = GeneratedEmail.objects.for_tenant(run.tenant).filter(run=run).aggregate(
            failed=Count("pk", filter=Q(status=EmailStatus.FAILED)), all=Count("pk"),
            input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"), cost=Sum("cost_usd"),
        )  # fmt: skip
        now, processed = timezone.now(), stats["all"]
        changes = {"generated": processed - stats["failed"], "failed": stats["failed"], "progress_at": now,
                   "input_tokens": stats["input_tokens"] or 0, "output_tokens": stats["output_tokens"] or 0,
                   "cost_usd": stats["cost"] or 0}  # fmt: skip
        if row.status == RunStatus.RUNNING:
            completing = row.total <= processed
            rate, eta = run_pace(started_at=row.started_at, now=now, processed=processed, total=row.total)
            if row.mode == RunMode.BATCH and not completing:
                # Nothing is written while the job runs, then everything at once: a rate would mean nothing.
                rate, eta = 0.0, None
            changes.update(rate_per_s=rate, eta_at=None if completing else eta)
            if completing:
                changes.update(status=RunStatus.COMPLETED, finished_at=now)
        runs.filter(pk=run.pk).update(**changes)
    run.refresh_from_db()
    return run


def run_pace(*, started_at, now, processed: int, total: int) -> tuple[float, datetime | None]:
    """Emails per second since the start, and when the rest will be done at that rate (None: done or no rate)."""
    seconds = (now - started_at).total_seconds() if started_at else 0
    rate = processed / seconds if seconds > 0 else 0.0
    eta = now + timedelta(seconds=(total - processed) / rate) if rate > 0 and processed < total else None
    return rate, eta


def email_send(*, email: GeneratedEmail) -> str:
    """Send an approved email exactly once. Returns the email's new status."""
    claimed = GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk, status=EmailStatus.APPROVED)
    if not claimed.update(status=EmailStatus.SENDING, send_claimed_at=timezone.now()):
        email.refresh_from_db()
        return email.status
    email.refresh_from_db()
    contact = email.contact
    if contact.unsubscribed:
        _set_status(email, status=EmailStatus.SUPPRESSED)
        return EmailStatus.SUPPRESSED
    message = build_message(email)
    try:
        message.send()
    except Exception as exc:  # the backend failed before handing over: nothing was sent, so it may be retried
        _set_status(email, status=EmailStatus.APPROVED, send_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _set_status(email, status=EmailStatus.SENT, sent_at=timezone.now(), message_id=message.extra_headers["Message-ID"])
    return EmailStatus.SENT


def _set_status(email: GeneratedEmail, **changes) -> None:
    GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk).update(**changes)
    for name, value in changes.items():
        setattr(email, name, value)


def build_message(email: GeneratedEmail) -> EmailMultiAlternatives:
    tenant, contact = email.tenant, email.contact
    context = {"subject": email.subject, "body": email.body, "brand": tenant.brand,
               "postal_address": tenant.postal_address, "unsubscribe_url": email.unsubscribe_url}  # fmt: skip
    domain = (tenant.sender_email or settings.DEFAULT_FROM_EMAIL).rsplit("@", 1)[-1]
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=render_to_string("emails/campaign_email.txt", context),
        from_email=tenant.from_email,
        to=[f"{contact.full_name} <{contact.email}>" if contact.full_name else contact.email],
        headers={
            "Message-ID": make_msgid(domain=domain),
            "List-Unsubscribe": f"<{email.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(render_to_string("emails/campaign_email.html", context), "text/html")
    return message


def run_send_approved(*, run: CampaignRun) -> dict[str, int]:
    outcome: dict[str, int] = {}
    ids = (
        GeneratedEmail.objects.for_tenant(run.tenant)
        .filter(run=run, status=EmailStatus.APPROVED)
        .values_list("pk", flat=True)
    )
    for email in (
        GeneratedEmail.objects.for_tenant(run.tenant).filter(pk__in=list(ids)).select_related("contact", "tenant")
    ):
        status = email_send(email=email)
        outcome[status] = outcome.get(status, 0) + 1
    return outcome
