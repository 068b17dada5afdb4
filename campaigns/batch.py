"""Large runs through Bedrock batch inference: one job writes the whole run, at half the on-demand price.

run_start asks `run_mode_choose` how a run is written. A batch run prepares every prompt once and keeps each
as a BatchRecord, writes them to S3 as JSONL and starts one job; a poll task watches the job, and when it has
finished judges every answer as on-demand generation does (campaigns.generation), writes on-demand again the
ones that fail, with the problem fed back, and stores the emails. A job that cannot start, fails, stops or
expires leaves the contacts it owed to on-demand chunks. The BatchRecords are the work still owed: storing an
email deletes its record in the same transaction, so a retried or duplicated task stores nothing twice. A job
that nothing waits for any more (its run was cancelled, or left it for a reason other than its end) is stopped,
so that it bills no further.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from campaigns.generation import (
    Draft,
    catalog_titles,
    contacts_pending,
    draft_answer,
    draft_request,
    draft_write,
    drafts_allowance,
    drafts_prepare,
    drafts_store,
)
from campaigns.leases import rows_claim
from campaigns.models import BatchRecord, CampaignRun, GeneratedEmail, RunMode, RunStatus
from campaigns.runs import batch_job_running, run_refresh
from campaigns.subjects import subjects_write
from routing.catalog import get_model
from routing.errors import ProviderError
from routing.gateway import llm_batch_usage, route_for
from routing.policy import RouteDecision
from routing.providers.bedrock_batch import (
    MIN_RECORDS,
    batch_job_results,
    batch_job_status,
    batch_job_stop,
    batch_job_submit,
)

COLLECT_SLICE = 1000  # answers judged, rewritten and stored together: a crash repeats at most this much work


@dataclass(frozen=True)
class BatchStep:
    """What a batch run needs next: its job looked at again later, and/or these contacts written on-demand,
    and/or its job stopped."""

    poll: bool = False
    on_demand: tuple[int, ...] = ()
    stop: bool = False


def batch_mode(*, tenant, route: RouteDecision, size: int) -> tuple[str, str]:
    """Batch or on-demand for a run of `size` contacts on the routed model, and why."""
    spec, threshold = get_model(route.model_key), settings.BEDROCK_BATCH_MIN_CONTACTS
    least = max(threshold, MIN_RECORDS)
    if not threshold:
        return RunMode.ON_DEMAND, "batch inference is off (BEDROCK_BATCH_MIN_CONTACTS=0)"
    if spec.provider != "bedrock" or not spec.batch:
        return RunMode.ON_DEMAND, f"{spec.key} does not run as a Bedrock batch job"
    if size < least:
        return RunMode.ON_DEMAND, (f"{size} contacts, fewer than the {least} a batch run needs "
                                   f"(BEDROCK_BATCH_MIN_CONTACTS={threshold}; Bedrock's minimum is {MIN_RECORDS})")  # fmt: skip
    if tenant.aws_role_arn:
        return RunMode.ON_DEMAND, "batch inference in the tenant's own AWS account needs a bucket and role there"
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return RunMode.ON_DEMAND, ("batch inference needs a task broker (REDIS_URL): tasks run in-process would "
                                   "hold the launch until the job ends")  # fmt: skip
    if not settings.BEDROCK_BATCH_BUCKET or not settings.BEDROCK_BATCH_ROLE_ARN:
        return RunMode.ON_DEMAND, "batch inference needs BEDROCK_BATCH_BUCKET and BEDROCK_BATCH_ROLE_ARN"
    return RunMode.BATCH, f"{size} contacts on {spec.key}: one Bedrock batch job, at half the on-demand price"


def run_mode_choose(*, run: CampaignRun) -> str:
    """Decide how a started run is written, from its size, and record the decision and its reason."""
    route = route_for(tenant=run.tenant, task=run.campaign.task)
    mode, reason = batch_mode(tenant=run.tenant, route=route, size=run.total)
    _update(run, mode=mode, mode_reason=reason)
    return mode


def run_batch_submit(*, run: CampaignRun, contact_ids: list[int]) -> BatchStep:
    """Prepare the run's prompts (once) and start its job. Safe to retry: the job's name is its idempotency
    token, and a job already recorded on the run is not started again."""
    if run.status != RunStatus.RUNNING or run.mode != RunMode.BATCH:
        return BatchStep()
    if run.batch_job_arn:
        return BatchStep(poll=True)
    records = _records(run) or records_create(run=run, contact_ids=contact_ids)
    if len(records) < MIN_RECORDS:
        why = f"{len(records)} contacts could be prompted, fewer than the {MIN_RECORDS} a batch job needs"
        return run_batch_abandon(run=run, why=why, failed=False)
    spec = get_model(records[0].fields["model_key"])
    requests = {record_id(r.contact_id): draft_request(_draft(r), tenant=run.tenant, spec=spec) for r in records}
    name = job_name(run)
    folder = f"s3://{settings.BEDROCK_BATCH_BUCKET}/batch/{name}"
    try:
        arn = batch_job_submit(
            tenant=run.tenant, name=name, model_id=spec.model_id, requests=requests,
            input_uri=f"{folder}/input.jsonl", output_uri=f"{folder}/output/", role_arn=settings.BEDROCK_BATCH_ROLE_ARN,
        )  # fmt: skip
    except ProviderError as exc:
        if not exc.permanent:
            raise  # throttled or failed on AWS's side: the task tries again later, with the same job name
        return run_batch_abandon(run=run, why=f"the batch job could not start: {exc.message}")
    _update(run, batch_job_arn=arn, batch_status="Submitted")
    run.refresh_from_db(fields=["status"])
    # Cancelled while the job was starting, too early for run_cancel to see a job to stop; the poll drops the
    # records.
    return BatchStep(poll=True, stop=run.status != RunStatus.RUNNING)


def records_create(*, run: CampaignRun, contact_ids: list[int]) -> list[BatchRecord]:
    """Prepare the prompts of the contacts without an email: those that cannot be prompted are stored as failed
    at once, the others kept as the job's records."""
    tenant = run.tenant
    contacts = contacts_pending(run=run, contact_ids=contact_ids)
    drafts = drafts_prepare(run=run, contacts=contacts, route=route_for(tenant=tenant, task=run.campaign.task))
    with transaction.atomic():
        drafts_store(run=run, drafts=[draft for draft in drafts if not draft.ready])
        BatchRecord.objects.for_tenant(tenant).bulk_create(
            [BatchRecord(tenant=tenant, run=run, contact=draft.contact, fields=draft.fields, system=draft.system)
             for draft in drafts if draft.ready],
            ignore_conflicts=True, batch_size=COLLECT_SLICE,
        )  # fmt: skip
    return _records(run)


def run_batch_poll(*, run: CampaignRun) -> BatchStep:
    """Look at the run's job once: again later while it runs; once it has finished, store its emails; when it
    failed, stopped or expired, leave what it owed to on-demand chunks. A run no longer running stops here."""
    if run.status != RunStatus.RUNNING or run.mode != RunMode.BATCH:
        _pending(run).delete()  # a cancelled run will store none of these
        return BatchStep()
    try:
        job = batch_job_status(tenant=run.tenant, job_arn=run.batch_job_arn)
    except ProviderError as exc:
        if exc.permanent:
            return run_batch_abandon(run=run, why=f"the batch job cannot be read: {exc.message}")
        return BatchStep(poll=True)
    _update(run, batch_status=job.status)
    if job.stopped:
        return run_batch_abandon(run=run, why=f"batch job {job.status}: {job.message or 'no reason given'}")
    if not job.finished:
        return BatchStep(poll=True)
    return run_batch_collect(run=run)


def run_batch_collect(*, run: CampaignRun) -> BatchStep:
    """Judge, complete and store the answers of the run's finished job, a slice at a time."""
    try:
        answers = batch_job_results(tenant=run.tenant, job_arn=run.batch_job_arn)
    except ProviderError as exc:
        if exc.permanent:
            return run_batch_abandon(run=run, why=f"the batch results cannot be read: {exc.message}")
        return BatchStep(poll=True)
    owed = list(_pending(run).order_by("contact_id").values_list("contact_id", flat=True))
    for start in range(0, len(owed), COLLECT_SLICE):
        run.refresh_from_db(fields=["status"])
        if run.status != RunStatus.RUNNING:
            _pending(run).delete()
            return BatchStep()
        records_store(run=run, contact_ids=owed[start : start + COLLECT_SLICE], answers=answers)
        run_refresh(run=run)  # progress, slice by slice
    run_refresh(run=run)  # also when a task that stored the last slice died before counting it
    # Records another task has claimed: look again later, in case that task dies and its claim runs out.
    return BatchStep(poll=_pending(run).exists())


def records_store(*, run: CampaignRun, contact_ids: list[int], answers: dict) -> None:
    """Judge each record's batch answer, write on-demand again those that fail while attempts remain, then store
    the emails and usage records of the records still owed, and drop those records. Only records this call
    claims: another task collecting the same run at the same time leaves them alone."""
    records = records_claim(run=run, contact_ids=contact_ids)
    if not records or not run_still_running(run):  # a run cancelled meanwhile pays for no screening or rewrite
        return
    tenant, campaign = run.tenant, run.campaign
    route = RouteDecision(records[0].fields["model_key"], records[0].fields["route_reason"])
    others = catalog_titles(run)
    drafts = [_draft(record) for record in records]

    def complete(draft: Draft) -> None:  # in a thread, without the database: screening and rewriting are calls
        answer = answers.get(record_id(draft.contact.pk)) or ProviderError(
            "the batch output has no answer for this record", permanent=False, code="NoRecord"
        )
        call = llm_batch_usage(tenant=tenant, task=campaign.task, route=route, answer=answer)
        draft_answer(draft, answer, call, tenant=tenant, campaign=campaign, others=others)
        draft_write(draft, tenant=tenant, campaign=campaign, route=route, others=others, allowance=allowance)

    workers = min(settings.LLM_CONCURRENCY, len(drafts))
    # Rewrites on-demand draw on a reservation in the tenant's budget, as a chunk's calls do (the batch's own
    # answers are paid for already: they are judged and stored whatever the budget says now).
    with drafts_allowance(drafts, tenant=tenant, route=route) as allowance:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") as pool:
            list(pool.map(complete, drafts))
    subjects_write(drafts, run=run)  # on demand: a subject call per finished draft, when the campaign asks
    with transaction.atomic():
        # Locked, so that of two tasks storing the same records the second finds them gone and stores nothing.
        owed = set(_pending(run).select_for_update().filter(pk__in=[r.pk for r in records]).values_list("contact_id", flat=True))  # fmt: skip
        owed -= set(GeneratedEmail.objects.for_tenant(tenant).filter(run=run, contact_id__in=owed).values_list("contact_id", flat=True))  # fmt: skip
        drafts_store(run=run, drafts=[draft for draft in drafts if draft.contact.pk in owed])
        _pending(run).filter(pk__in=[r.pk for r in records]).delete()


def records_claim(*, run: CampaignRun, contact_ids: list[int]) -> list[BatchRecord]:
    """Claim the run's records among `contact_ids` that no other task holds (or whose claim ran out)."""
    token = rows_claim(_pending(run).filter(contact_id__in=contact_ids), field="claim")
    return list(_pending(run).filter(claim=token).select_related("contact"))


def run_still_running(run: CampaignRun) -> bool:
    return CampaignRun.objects.for_tenant(run.tenant).filter(pk=run.pk, status=RunStatus.RUNNING).exists()


def run_batch_abandon(*, run: CampaignRun, why: str, failed: bool = True) -> BatchStep:
    """Leave batch mode, saying why (as the run's error too when the job failed): the contacts the job still
    owed go to on-demand chunks. Once only: a second caller gets nothing to do."""
    changes = {"mode": RunMode.ON_DEMAND, "mode_reason": f"{why}; written on-demand instead"[:500]}
    if failed:
        changes["error"] = why[:2000]
    with transaction.atomic():
        if not CampaignRun.objects.for_tenant(run.tenant).filter(pk=run.pk, mode=RunMode.BATCH).update(**changes):
            return BatchStep()
        owed = tuple(_pending(run).order_by("contact_id").values_list("contact_id", flat=True))
        _pending(run).delete()
    run.refresh_from_db()
    if not owed:
        run_refresh(run=run)  # no chunk will: complete the run if nothing is left
    return BatchStep(on_demand=owed, stop=batch_job_running(run))  # e.g. its status could not be read


def run_batch_stop(*, run: CampaignRun) -> None:
    """Stop the run's job, which nothing waits for any more, and record how it ended."""
    if not batch_job_running(run):
        return
    status = batch_job_stop(tenant=run.tenant, job_arn=run.batch_job_arn)
    # A job Bedrock is stopping ends Stopped, and nobody polls a job its run has left.
    _update(run, batch_status="Stopped" if status == "Stopping" else status)


def record_id(contact_id: int) -> str:
    # Bedrock documents record ids as alphanumeric (its examples have 11 characters); this maps back by int().
    return f"{contact_id:011d}"


def job_name(run: CampaignRun) -> str:
    # Also the idempotency token and the S3 folder: the creation time keeps two deployments that share an AWS
    # account and bucket (staging and production, each with its own run #17) from ever meeting.
    return f"ms{run.tenant_id}-run{run.pk}-{run.created_at:%Y%m%d%H%M%S%f}"


def _draft(record: BatchRecord) -> Draft:
    fields = dict(record.fields)
    titles = [item["title"] for item in fields["items"]]
    return Draft(record.contact, fields, titles=titles, system=record.system, prompt=fields["prompt"])


def _pending(run: CampaignRun):
    return BatchRecord.objects.for_tenant(run.tenant).filter(run=run)


def _records(run: CampaignRun) -> list[BatchRecord]:
    return list(_pending(run).select_related("contact").order_by("contact_id"))


def _update(run: CampaignRun, **changes) -> None:
    CampaignRun.objects.for_tenant(run.tenant).filter(pk=run.pk).update(**changes)
    for name, value in changes.items():
        setattr(run, name, value)
