"""Campaign workflows: launch a run, start and cancel it, regenerate its emails (sending: campaigns.sending,
schedules: campaigns.schedules). Writing the emails themselves lives in campaigns.generation (and
campaigns.batch), a run's bookkeeping in campaigns.runs; this module dispatches their tasks."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.audiences import AudienceError, audience_contacts
from campaigns.batch import run_mode_choose
from campaigns.generation import draft_guide, drafts_prepare, drafts_store, drafts_write
from campaigns.models import (
    ACTIVE_RUN_STATUSES,
    Campaign,
    CampaignRun,
    EmailStatus,
    GeneratedEmail,
    InvalidTransition,
    RunMode,
    RunStatus,
)
from campaigns.runs import batch_job_running, run_chunks, run_refresh
from campaigns.subjects import subjects_write
from recommendations.services import current_engine
from routing.gateway import route_for
from tenants.services import QuotaExceeded, quota_month, quota_reserve


class CampaignError(Exception):
    pass


class RunStillActive(CampaignError):
    """The campaign already has a queued or running run: one at a time."""

    def __init__(self, message: str, run: CampaignRun | None = None):
        super().__init__(message)
        self.run = run


def audience(campaign: Campaign):
    """The contacts a run of this campaign writes to: subscribed, as the campaign's audience says (campaigns.audiences:
    everyone, a saved filter, not emailed lately, active since the last run), worked out afresh at every run."""
    try:
        return audience_contacts(campaign)
    except AudienceError as exc:  # saved before the rules were checked (or by hand): say so, do not guess
        raise CampaignError(f"campaign {campaign.name!r} has an invalid audience: {exc}") from None


def campaign_launch(*, campaign: Campaign, limit: int | None = None) -> CampaignRun:
    """Create a queued run, holding its share of the monthly quota, and start it after commit. One active run per
    campaign; two launches can never both take the last of the quota."""
    tenant = campaign.tenant
    size = audience(campaign).count()
    if limit is not None:
        size = min(size, limit)
    if size == 0:
        raise CampaignError(f"campaign {campaign.name!r} has no subscribed contacts in its audience")
    try:
        with transaction.atomic():
            run = CampaignRun.objects.for_tenant(tenant).create(
                tenant=tenant, campaign=campaign, total=size, quota_reserved=size
            )
            quota_reserve(tenant=tenant, count=size, month=quota_month(run.created_at))
    except QuotaExceeded as exc:
        raise CampaignError(
            f"this run needs {size} emails but only {exc.remaining} remain in {tenant.name}'s monthly quota of "
            f"{exc.quota}; narrow the audience or upgrade the plan"
        ) from None
    except IntegrityError:
        active = (
            CampaignRun.objects.for_tenant(tenant).filter(campaign=campaign, status__in=ACTIVE_RUN_STATUSES).first()
        )
        raise RunStillActive(
            f"campaign {campaign.name!r} already has an active run (#{active.pk if active else '?'})", active
        ) from None
    from campaigns import tasks

    transaction.on_commit(lambda: tasks.run_start.delay(run.pk, tenant.pk, limit))
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


FEEDBACK_MAX = 1000


def email_regenerate_request(
    *, email: GeneratedEmail, feedback: str = "", exclude: tuple[str, ...] = (), by: str = ""
) -> GeneratedEmail:
    """Mark a failed, rejected or unreviewed email as being regenerated, count it in the monthly quota, and have a
    task write it again after commit (`feedback`: what the reviewer wants changed; `exclude`: external ids of picks
    it must not recommend again). A concurrent review wins."""
    tenant, feedback = email.tenant, feedback.strip()
    if len(feedback) > FEEDBACK_MAX:
        raise CampaignError(f"the feedback is {len(feedback)} characters; at most {FEEDBACK_MAX}")
    picked = {item.get("id") for item in email.items}
    unknown = sorted(set(exclude) - picked)
    if unknown:
        raise CampaignError(f"cannot exclude {', '.join(map(str, unknown))}: not among this email's picks")
    try:
        with transaction.atomic():
            quota_reserve(tenant=tenant, count=1, month=quota_month())
            email.regenerate_claim(by=by, feedback=feedback, exclude=tuple(exclude))
    except QuotaExceeded as exc:
        raise CampaignError(
            f"regenerating needs 1 email but only {exc.remaining} remain in {tenant.name}'s monthly quota of "
            f"{exc.quota}"
        ) from None
    from campaigns import tasks

    tasks.email_regenerate.delay_on_commit(email.pk, tenant.pk, feedback, list(exclude))
    return email


def email_regenerate(*, email: GeneratedEmail, feedback: str = "", exclude: tuple[str, ...] = ()) -> GeneratedEmail:
    """Write a regenerating email again, with fresh picks and the reviewer's feedback, and leave it a draft (or
    failed, with the reason). An email that is no longer regenerating is left alone."""
    if email.status != EmailStatus.REGENERATING:
        return email
    run = email.run
    route = route_for(tenant=run.tenant, task=run.campaign.task)
    (draft,) = drafts_prepare(run=run, contacts=[email.contact], route=route, exclude={email.contact_id: set(exclude)})
    draft_guide(draft, feedback)
    drafts_write([draft], run=run, route=route)
    subjects_write([draft], run=run)
    draft.stored = True  # the email exists: only the calls' usage is inserted
    with transaction.atomic():
        drafts_store(run=run, drafts=[draft])
        email.regenerate_finish(**draft.fields, feedback=feedback)
    run_refresh(run=run)
    return email


def email_regenerate_fail(*, email: GeneratedEmail, reason: str) -> None:
    """A regeneration that failed for good: the email is failed with the reason (and can be regenerated again),
    unless it has moved on (another regeneration, after this one's claim had run out, finished first)."""
    try:
        email.regenerate_finish(status=EmailStatus.FAILED, failure_reason=reason[:2000])
    except InvalidTransition:
        return
    run_refresh(run=email.run)


def run_cancel(*, run: CampaignRun) -> bool:
    """Stop a queued or running run: chunks not yet started write nothing, and its Bedrock batch job is stopped
    (by a task after commit: the caller never waits on AWS). Emails already written stay."""
    cancelled = (
        CampaignRun.objects.for_tenant(run.tenant)
        .filter(pk=run.pk, status__in=ACTIVE_RUN_STATUSES)
        .update(status=RunStatus.CANCELLED, finished_at=timezone.now(), eta_at=None)
    )
    if cancelled:
        run_refresh(run=run)  # gives back the quota it reserved and did not use; reads a job started meanwhile
        if batch_job_running(run):
            from campaigns import tasks

            tasks.run_batch_stop.delay_on_commit(run.pk, run.tenant_id)
    return bool(cancelled)
