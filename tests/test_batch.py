"""Large runs through Bedrock batch inference: the mode decision, one job per run, answers mapped back by record
id and judged like on-demand ones, on-demand where the batch falls short, and nothing stored twice. Boto3 talks
to the local emulator over HTTP (Bedrock control plane, runtime and S3)."""

import json
import re
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

from campaigns import batch, services, tasks
from campaigns.models import BatchRecord, Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunMode, RunStatus
from datasets.models import Contact
from routing.catalog import get_model, invalidate
from routing.errors import ProviderError
from routing.models import LLMCall, ModelEntry
from routing.policy import RouteDecision
from routing.providers import bedrock_batch
from routing.ratelimit import RateLimitTimeout
from saas.celery import app as celery_app
from tests.conftest import api_client, bulk_catalog
from tests.fixtures_aws import BUCKET, aws_client
from tests.workers import wait_for

N = 120  # contacts: over Bedrock's minimum of 100 records per job
ROLE = "arn:aws:iam::123456789012:role/BedrockBatch"
NOVA_LITE = "bedrock/nova-lite"  # the Basic plan's model


@pytest.fixture
def batch_settings(bedrock_settings, aws_settings):
    aws_settings.BEDROCK_BATCH_MIN_CONTACTS = 100
    aws_settings.BEDROCK_BATCH_BUCKET = BUCKET
    aws_settings.BEDROCK_BATCH_ROLE_ARN = ROLE
    aws_settings.BEDROCK_BATCH_POLL_SECONDS = 0
    return aws_settings


@pytest.fixture
def eager_tasks():
    """Tasks run in-process, as in the embedded default: the poll task's countdown is ignored, so it polls the
    emulator's job (10 ms per status) until the job ends."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def campaign(tenant):
    bulk_catalog(tenant, n_contacts=N)
    return Campaign.dangerously_unscoped.create(tenant=tenant, name="Everyone", n_items=2)


def launch(campaign, capture, limit=None) -> CampaignRun:
    """Launch and let the start task (and all it dispatches) run at commit."""
    with capture(execute=True):
        run = services.campaign_launch(campaign=campaign, limit=limit)
    run.refresh_from_db()
    return run


def submitted(campaign) -> CampaignRun:
    """A started batch run whose job is submitted; the test drives the polling."""
    run = services.campaign_launch(campaign=campaign)
    (contact_ids,) = services.run_start(run=run)
    assert batch.run_batch_submit(run=run, contact_ids=contact_ids) == batch.BatchStep(poll=True)
    return run


def job_ended(run):
    for _ in range(1000):
        job = bedrock_batch.batch_job_status(tenant=run.tenant, job_arn=run.batch_job_arn)
        if job.finished or job.stopped:
            return job
        time.sleep(0.005)
    raise AssertionError(f"the job is still {job.status}")


def operations(emulator, name, status=200) -> int:
    return len(emulator.requests.filter(operation=name, status=status))


def test_a_large_run_is_written_by_one_batch_job_at_the_batch_price(
    batch_settings, eager_tasks, scoped, campaign, emulator, django_capture_on_commit_callbacks, owner_api
):
    run = launch(campaign, django_capture_on_commit_callbacks)
    assert (run.status, run.mode, run.batch_status, run.error) == (RunStatus.COMPLETED, RunMode.BATCH, "Completed", "")
    assert (run.total, run.generated, run.failed) == (N, N, 0)
    assert "one Bedrock batch job" in run.mode_reason and run.batch_job_arn.startswith("arn:aws:bedrock:")
    shown = owner_api.get(f"/api/v1/runs/{run.pk}/").json()  # what a CRM sees of the decision
    assert (shown["mode"], shown["batch_status"]) == ("batch", "Completed")
    assert run.batch_job_arn.split(":")[4] not in str(shown)  # the platform's AWS account id
    assert shown["mode_reason"] == run.mode_reason
    assert operations(emulator, "CreateModelInvocationJob") == 1 and operations(emulator, "GetModelInvocationJob") > 1
    assert operations(emulator, "Converse") == 0

    jsonl = aws_client(emulator, "s3").get_object(Bucket=BUCKET, Key=f"batch/{batch.job_name(run)}/input.jsonl")
    records = {r["recordId"]: r["modelInput"] for r in map(json.loads, jsonl["Body"].read().decode().splitlines())}
    contacts = Contact.objects.order_by("pk")
    assert sorted(records) == [f"{c.pk:011d}" for c in contacts]
    emails = GeneratedEmail.objects.filter(run=run).select_related("contact")
    assert emails.count() == N and emails.values("contact").distinct().count() == N
    for email in emails:
        assert (email.status, email.attempts) == (EmailStatus.DRAFT, 1)
        prompt = records[f"{email.contact_id:011d}"]["messages"][0]["content"][0]["text"]
        assert prompt == email.prompt and email.contact.first_name in prompt  # the record that was this contact's
        assert email.body.split()[1].rstrip(",") == email.contact.first_name  # "Hi Bulk7," answered it
        assert all(item["title"] in prompt and item["title"] in email.body for item in email.items)

    calls = LLMCall.objects.all()
    assert calls.count() == N and all("batch" in call.route_reason and call.ok for call in calls)
    for call in calls:
        on_demand = get_model(NOVA_LITE).cost(
            call.input_tokens, call.output_tokens, call.cache_read_tokens, call.cache_write_tokens
        )
        assert call.cost_usd == on_demand / 2 > 0
    assert run.cost_usd == sum(call.cost_usd for call in calls) == sum(email.cost_usd for email in emails)
    assert not BatchRecord.objects.exists()


def test_a_run_under_the_job_minimum_is_written_on_demand(
    batch_settings, eager_tasks, scoped, campaign, emulator, django_capture_on_commit_callbacks
):
    batch_settings.BEDROCK_BATCH_MIN_CONTACTS = 10
    run = launch(campaign, django_capture_on_commit_callbacks, limit=60)
    assert (run.status, run.mode, run.generated) == (RunStatus.COMPLETED, RunMode.ON_DEMAND, 60)
    assert "60 contacts" in run.mode_reason and "Bedrock's minimum is 100" in run.mode_reason
    assert operations(emulator, "CreateModelInvocationJob") == 0 and operations(emulator, "Converse") == 60
    assert not LLMCall.objects.filter(route_reason__contains="batch").exists()


def test_a_model_without_batch_inference_is_written_on_demand(
    batch_settings, eager_tasks, scoped, campaign, emulator, django_capture_on_commit_callbacks, monkeypatch
):
    ModelEntry.objects.filter(key=NOVA_LITE).update(supports_batch=False)
    invalidate()  # a queryset update sends no signal
    run = launch(campaign, django_capture_on_commit_callbacks)
    assert (run.status, run.mode, run.generated) == (RunStatus.COMPLETED, RunMode.ON_DEMAND, N)
    assert run.mode_reason == "bedrock/nova-lite does not run as a Bedrock batch job"
    assert operations(emulator, "CreateModelInvocationJob") == 0 and operations(emulator, "Converse") == N


@pytest.mark.parametrize(
    ("size", "threshold", "model", "role_arn", "own_account", "mode", "reason"),
    [
        (1000, 1000, "bedrock/nova-lite", ROLE, False, RunMode.BATCH, "one Bedrock batch job"),
        (999, 1000, "bedrock/nova-lite", ROLE, False, RunMode.ON_DEMAND, "fewer than the 1000"),
        (99, 10, "bedrock/nova-lite", ROLE, False, RunMode.ON_DEMAND, "Bedrock's minimum is 100"),
        (100, 10, "bedrock/claude-3.7-sonnet", ROLE, False, RunMode.BATCH, "bedrock/claude-3.7-sonnet"),
        (5000, 0, "bedrock/nova-lite", ROLE, False, RunMode.ON_DEMAND, "off"),
        (5000, 100, "local/qwen2.5-1.5b", ROLE, False, RunMode.ON_DEMAND, "does not run as a Bedrock batch job"),
        (5000, 100, "bedrock/nova-lite", "", False, RunMode.ON_DEMAND, "BEDROCK_BATCH_ROLE_ARN"),
        (5000, 100, "bedrock/nova-lite", ROLE, True, RunMode.ON_DEMAND, "own AWS account"),
    ],
)
def test_the_mode_follows_size_model_and_configuration(
    db, settings, size, threshold, model, role_arn, own_account, mode, reason
):
    settings.BEDROCK_BATCH_MIN_CONTACTS, settings.BEDROCK_BATCH_ROLE_ARN = threshold, role_arn
    settings.BEDROCK_BATCH_BUCKET, settings.CELERY_TASK_ALWAYS_EAGER = BUCKET, False
    tenant = SimpleNamespace(aws_role_arn="arn:aws:iam::222233334444:role/mailsaas-x" if own_account else "")
    chosen, why = batch.batch_mode(tenant=tenant, route=RouteDecision(model, "test"), size=size)
    assert chosen == mode and reason in why


def test_without_a_broker_runs_stay_on_demand(db, settings):
    """Without Redis, tasks run inside the request that launched the run: it must not wait hours for a job."""
    settings.BEDROCK_BATCH_MIN_CONTACTS, settings.BEDROCK_BATCH_ROLE_ARN, settings.BEDROCK_BATCH_BUCKET = (
        100,
        ROLE,
        BUCKET,
    )
    settings.CELERY_TASK_ALWAYS_EAGER = True
    tenant = SimpleNamespace(aws_role_arn="")
    chosen, why = batch.batch_mode(tenant=tenant, route=RouteDecision("bedrock/nova-lite", "test"), size=5000)
    assert chosen == RunMode.ON_DEMAND and "needs a task broker" in why


def record_set(emulator, run, changes: dict[int, dict | None]) -> None:
    """Rewrite the job's output as if the model had answered these contacts so (None: no line at all)."""
    s3 = aws_client(emulator, "s3")
    (key,) = [k["Key"] for k in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"batch/{batch.job_name(run)}/output/")
              ["Contents"] if k["Key"].endswith(".jsonl.out")]  # fmt: skip
    lines = []
    for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines():
        record = json.loads(line)
        contact_id = int(record["recordId"])
        if contact_id in changes:
            if changes[contact_id] is None:
                continue
            record.pop("modelOutput")
            record.update(changes[contact_id])
        lines.append(json.dumps(record))
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode() + b"\n")


OFF_BRIEF = (
    "<subject>This week's picks</subject>\n<body>Hello there, we lined up some great films for you "
    "this week, all of them new on the service. Enjoy the show!\n</body>"
)  # names none of the picks


@pytest.mark.parametrize("attempts", [2, 1])
def test_batch_answers_that_fail_are_written_again_on_demand_while_attempts_remain(
    batch_settings, scoped, campaign, emulator, attempts
):
    batch_settings.LLM_MAX_ATTEMPTS = attempts
    run = submitted(campaign)
    job_ended(run)
    off_brief, errored, missing, refused = Contact.objects.order_by("pk").values_list("pk", flat=True)[:4]
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": OFF_BRIEF}]}}, "stopReason": "end_turn",
              "usage": {"inputTokens": 300, "outputTokens": 30}}  # fmt: skip
    record_set(emulator, run, {
        off_brief: {"modelOutput": answer},
        errored: {"error": {"errorCode": 500, "errorMessage": "The model is overloaded."}},
        missing: None,
        refused: {"error": {"errorCode": 400, "errorMessage": "Malformed input request."}},
    })  # fmt: skip

    assert batch.run_batch_poll(run=run) == batch.BatchStep()
    run.refresh_from_db()
    emails = {e.contact_id: e for e in GeneratedEmail.objects.filter(run=run)}
    assert len(emails) == N and run.status == RunStatus.COMPLETED
    assert (emails[refused].status, emails[refused].attempts) == (EmailStatus.FAILED, 1)
    assert "Malformed input request." in emails[refused].failure_reason  # a permanent error is not retried
    retried = (off_brief, errored, missing)
    if attempts == 2:
        for contact_id in retried:
            email = emails[contact_id]
            assert (email.status, email.attempts) == (EmailStatus.DRAFT, 2)
            assert all(item["title"] in email.body for item in email.items)
        assert operations(emulator, "Converse") == 3 and (run.generated, run.failed) == (N - 1, 1)
    else:
        assert [emails[c].status for c in retried] == [EmailStatus.FAILED] * 3
        assert emails[off_brief].failure_reason.startswith("does not mention: ")
        assert "The model is overloaded." in emails[errored].failure_reason
        assert "no answer for this record" in emails[missing].failure_reason
        assert operations(emulator, "Converse") == 0 and (run.generated, run.failed) == (N - 4, 4)
    assert all(
        e.status == EmailStatus.DRAFT and e.attempts == 1 for c, e in emails.items() if c not in (*retried, refused)
    )
    batch_calls = LLMCall.objects.filter(route_reason__contains="batch")
    assert batch_calls.count() == N and batch_calls.filter(ok=False).count() == 3
    assert LLMCall.objects.exclude(route_reason__contains="batch").count() == (3 if attempts == 2 else 0)
    assert run.cost_usd == sum(LLMCall.objects.values_list("cost_usd", flat=True))


def test_a_failed_job_leaves_the_run_to_on_demand_chunks(batch_settings, eager_tasks, scoped, campaign, emulator):
    run = submitted(campaign)
    # The job will find no input, so it fails; Bedrock says why.
    aws_client(emulator, "s3").delete_object(Bucket=BUCKET, Key=f"batch/{batch.job_name(run)}/input.jsonl")
    tasks.run_batch_poll.delay(run.pk, run.tenant_id)
    run.refresh_from_db()
    assert (run.status, run.mode, run.batch_status) == (RunStatus.COMPLETED, RunMode.ON_DEMAND, "Failed")
    assert "batch job Failed: Unable to read the input data" in run.error
    assert run.mode_reason.startswith(run.error) and run.mode_reason.endswith("written on-demand instead")
    emails = GeneratedEmail.objects.filter(run=run)
    assert emails.count() == N and emails.values("contact").distinct().count() == N
    assert not emails.exclude(status=EmailStatus.DRAFT).exists() and run.generated == N
    assert operations(emulator, "Converse") == N and LLMCall.objects.count() == N
    assert not BatchRecord.objects.exists()
    assert not emulator.requests.filter(operation="StopModelInvocationJob")  # it ended by itself


def test_a_retried_collection_stores_only_what_is_missing(batch_settings, scoped, campaign, emulator):
    run = submitted(campaign)
    job_ended(run)
    first = Contact.objects.order_by("pk").first()
    # Written meanwhile by another task (its record was not yet dropped when this one read the records).
    GeneratedEmail.objects.create(tenant=run.tenant, run=run, contact=first, subject="Written before", body="x")
    batch.run_batch_poll(run=run)
    emails = GeneratedEmail.objects.filter(run=run)
    assert emails.count() == N and emails.values("contact").distinct().count() == N
    assert emails.get(contact=first).subject == "Written before"
    assert LLMCall.objects.count() == N - 1  # none for the contact whose email was already there

    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)  # as a redelivered task would find it
    tasks.run_batch_poll.apply(args=(run.pk, run.tenant_id))
    tasks.run_batch_poll.apply(args=(run.pk, run.tenant_id))
    assert emails.count() == N and LLMCall.objects.count() == N - 1
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED  # recounted, although it had nothing left to store


def test_records_another_task_is_collecting_are_left_to_it_until_its_claim_runs_out(
    batch_settings, scoped, campaign, emulator
):
    batch_settings.LLM_MAX_ATTEMPTS = 2
    run = submitted(campaign)
    job_ended(run)
    # Another task collecting the same run holds the first 20 records (a duplicate poll, a redelivered task).
    held = batch.records_claim(
        run=run, contact_ids=list(Contact.objects.order_by("pk").values_list("pk", flat=True)[:20])
    )
    assert len(held) == 20
    assert batch.run_batch_poll(run=run) == batch.BatchStep(poll=True)  # look again later: 20 not stored yet
    assert GeneratedEmail.objects.filter(run=run).count() == N - 20 and LLMCall.objects.count() == N - 20
    assert set(BatchRecord.objects.values_list("contact_id", flat=True)) == {r.contact_id for r in held}

    BatchRecord.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))  # that task died
    assert batch.run_batch_poll(run=run) == batch.BatchStep()
    emails = GeneratedEmail.objects.filter(run=run)
    assert emails.count() == emails.values("contact").distinct().count() == N and LLMCall.objects.count() == N
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and not BatchRecord.objects.exists()


def test_a_retried_submission_starts_no_second_job(batch_settings, scoped, campaign, emulator):
    run = submitted(campaign)
    arn = run.batch_job_arn
    assert batch.run_batch_submit(run=run, contact_ids=[]) == batch.BatchStep(poll=True)
    assert operations(emulator, "CreateModelInvocationJob") == 1
    # A task that started the job but died before recording it prepares nothing again and gets the same job.
    CampaignRun.objects.filter(pk=run.pk).update(batch_job_arn="")
    run.refresh_from_db()
    assert batch.run_batch_submit(run=run, contact_ids=[]) == batch.BatchStep(poll=True)
    run.refresh_from_db()
    assert run.batch_job_arn == arn and BatchRecord.objects.count() == N


def test_a_cancelled_run_stops_polling_and_writes_nothing(batch_settings, scoped, campaign, emulator):
    run = submitted(campaign)
    assert services.run_cancel(run=run)
    run.refresh_from_db()
    assert batch.run_batch_poll(run=run) == batch.BatchStep()
    assert operations(emulator, "GetModelInvocationJob") == 0
    assert not BatchRecord.objects.exists() and not GeneratedEmail.objects.exists()


SLOW_STEP_MS = 1000  # each status of the job lasts a second: it is stopped long before it could end


def job_now(emulator, run) -> str:
    return aws_client(emulator, "bedrock").get_model_invocation_job(jobIdentifier=run.batch_job_arn)["status"]


def test_cancelling_a_batch_run_stops_its_job_after_commit(
    batch_settings, eager_tasks, scoped, campaign, emulator, django_capture_on_commit_callbacks
):
    emulator.configure(status_step_ms=SLOW_STEP_MS)
    run = services.campaign_launch(campaign=campaign)
    as_read = CampaignRun.objects.get(pk=run.pk)  # e.g. by a view, just before the job started
    (contact_ids,) = services.run_start(run=run)
    batch.run_batch_submit(run=run, contact_ids=contact_ids)
    with django_capture_on_commit_callbacks(execute=True) as dispatched:
        assert services.run_cancel(run=as_read)
        assert operations(emulator, "StopModelInvocationJob") == 0  # the caller does not wait on AWS
    assert len(dispatched) == 1 and operations(emulator, "StopModelInvocationJob") == 1
    run.refresh_from_db()
    assert (run.status, run.mode, run.batch_status) == (RunStatus.CANCELLED, RunMode.BATCH, "Stopped")
    assert job_now(emulator, run) in ("Stopping", "Stopped")
    tasks.run_batch_poll.apply(args=(run.pk, run.tenant_id))  # the poll already scheduled finds the run over
    assert not GeneratedEmail.objects.exists() and not BatchRecord.objects.exists()
    assert operations(emulator, "Converse") == 0 and operations(emulator, "StopModelInvocationJob") == 1


def test_a_job_that_ended_is_not_stopped(
    batch_settings, eager_tasks, scoped, campaign, emulator, django_capture_on_commit_callbacks
):
    run = submitted(campaign)
    job_ended(run)  # Completed, while the run still thinks it Submitted
    assert bedrock_batch.batch_job_stop(tenant=run.tenant, job_arn=run.batch_job_arn) == "Completed"
    with django_capture_on_commit_callbacks(execute=True):
        assert services.run_cancel(run=run)
    run.refresh_from_db()
    assert (run.status, run.batch_status) == (RunStatus.CANCELLED, "Completed")  # what the stop found
    assert operations(emulator, "StopModelInvocationJob", 400) == 2
    assert operations(emulator, "StopModelInvocationJob") == 0
    # A run that knows its job ended does not ask.
    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True) as dispatched:
        assert services.run_cancel(run=run)
    assert not dispatched and operations(emulator, "StopModelInvocationJob", 400) == 2


@pytest.mark.parametrize("failure", ["unknown job", "throttled"])
def test_a_stop_that_fails_in_process_is_logged_and_the_run_stays_cancelled(
    batch_settings, eager_tasks, scoped, campaign, emulator, django_capture_on_commit_callbacks, caplog, failure
):
    emulator.configure(status_step_ms=SLOW_STEP_MS)
    run = submitted(campaign)
    if failure == "unknown job":
        unknown = run.batch_job_arn.rsplit("/", 1)[0] + "/" + "0" * 12
        CampaignRun.objects.filter(pk=run.pk).update(batch_job_arn=unknown)
    else:  # botocore's one attempt; in-process there is no later to retry in
        batch_settings.AWS_MAX_ATTEMPTS = 1
        emulator.configure("StopModelInvocationJob", fail_next=1, fail_with="throttle")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.run_cancel(run=run)  # eager tasks propagate errors: this one must not
    run.refresh_from_db()
    assert (run.status, run.batch_status) == (RunStatus.CANCELLED, "Submitted")
    assert len(emulator.requests.filter(operation="StopModelInvocationJob")) == 1
    assert f"batch job {run.batch_job_arn} of run {run.pk} is not stopped" in caplog.text


def test_a_job_left_for_on_demand_is_stopped(batch_settings, eager_tasks, scoped, campaign, emulator, monkeypatch):
    emulator.configure(status_step_ms=SLOW_STEP_MS)
    run = submitted(campaign)

    def unreadable(**_):  # AWS refuses the status read (and only that)
        raise ProviderError(
            "Bedrock AccessDeniedException: not authorized", permanent=True, code="AccessDeniedException"
        )

    monkeypatch.setattr(batch, "batch_job_status", unreadable)
    tasks.run_batch_poll.delay(run.pk, run.tenant_id)
    run.refresh_from_db()
    assert (run.status, run.mode, run.batch_status) == (RunStatus.COMPLETED, RunMode.ON_DEMAND, "Stopped")
    assert "the batch job cannot be read" in run.mode_reason and run.generated == N
    assert operations(emulator, "StopModelInvocationJob") == 1 and operations(emulator, "Converse") == N
    assert job_now(emulator, run) in ("Stopping", "Stopped")


def test_a_run_cancelled_while_its_job_starts_stops_the_job(
    batch_settings, eager_tasks, scoped, campaign, emulator, monkeypatch
):
    emulator.configure(status_step_ms=SLOW_STEP_MS)
    run = services.campaign_launch(campaign=campaign)
    (contact_ids,) = services.run_start(run=run)
    submit = batch.batch_job_submit

    def submit_then_cancel(**params):  # the cancel lands while AWS starts the job, before the run records it
        arn = submit(**params)
        assert services.run_cancel(run=CampaignRun.objects.get(pk=run.pk))
        return arn

    monkeypatch.setattr(batch, "batch_job_submit", submit_then_cancel)
    tasks.run_batch_submit.delay(run.pk, run.tenant_id, contact_ids)
    run.refresh_from_db()
    assert (run.status, run.batch_status) == (RunStatus.CANCELLED, "Stopped")
    assert operations(emulator, "StopModelInvocationJob") == 1 and job_now(emulator, run) in ("Stopping", "Stopped")
    assert not BatchRecord.objects.exists() and not GeneratedEmail.objects.exists()


def test_the_api_cancels_a_batch_run_and_stops_its_job_for_its_tenant_only(
    batch_settings, eager_tasks, scoped, campaign, emulator, django_capture_on_commit_callbacks, owner_api, outsider_api
):
    emulator.configure(status_step_ms=SLOW_STEP_MS)
    run = submitted(campaign)
    url = f"/api/v1/runs/{run.pk}/cancel/"
    with django_capture_on_commit_callbacks(execute=True) as dispatched:
        assert outsider_api.post(url).status_code == 404
    run.refresh_from_db()
    assert not dispatched and run.status == RunStatus.RUNNING
    assert not emulator.requests.filter(operation="StopModelInvocationJob") and job_now(emulator, run) == "Submitted"
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_api.post(url)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    run.refresh_from_db()
    assert run.batch_status == "Stopped" and operations(emulator, "StopModelInvocationJob") == 1


@pytest.mark.worker
def test_a_worker_stops_the_job_of_a_cancelled_run_and_retries_when_throttled(
    start_worker, batch_settings, campaign, emulator
):
    emulator.configure(status_step_ms=10_000)  # the job cannot end during the test
    worker = start_worker(BEDROCK_BATCH_MIN_CONTACTS="100", BEDROCK_BATCH_BUCKET=BUCKET, BEDROCK_BATCH_ROLE_ARN=ROLE,
                          BEDROCK_BATCH_POLL_SECONDS="1", AWS_MAX_ATTEMPTS="2")  # fmt: skip
    client = api_client(campaign.tenant)
    run_id = client.post(f"/api/v1/campaigns/{campaign.pk}/launch/", {}, format="json").json()["id"]
    runs = CampaignRun.dangerously_unscoped.filter(pk=run_id)
    wait_for(lambda: runs.get().batch_job_arn, worker=worker, what="the batch job to start")
    # Both of botocore's attempts in the worker fail, then the first of the task's retry.
    emulator.configure("StopModelInvocationJob", fail_next=3, fail_with="throttle")
    assert client.post(f"/api/v1/runs/{run_id}/cancel/").json()["status"] == "cancelled"
    wait_for(lambda: runs.get().batch_status == "Stopped", worker=worker, what="the job to be stopped")
    assert operations(emulator, "StopModelInvocationJob", 429) == 3
    assert operations(emulator, "StopModelInvocationJob") == 1 and job_now(emulator, runs.get()) in (
        "Stopping",
        "Stopped",
    )
    records = BatchRecord.dangerously_unscoped.filter(run_id=run_id)
    wait_for(lambda: not records.exists(), worker=worker, what="the poll to drop the records")
    assert not GeneratedEmail.dangerously_unscoped.filter(run_id=run_id).exists()


def test_the_iam_policy_allows_every_bedrock_call_of_the_batch_adapter():
    policy = json.loads((Path(__file__).resolve().parent.parent / "docs" / "iam-policy.json").read_text())
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    methods = re.findall(r'_call\(\s*tenant,\s*"(\w+)"', Path(bedrock_batch.__file__).read_text())
    operations = {"bedrock:" + "".join(word.title() for word in method.split("_")) for method in methods}
    assert "bedrock:StopModelInvocationJob" in operations and operations <= allowed


def test_batch_records_stay_in_their_tenant(batch_settings, scoped, campaign, other_tenant):
    from tenants.scoping import tenant_scope

    mine = submitted(campaign)
    # The other tenant's own prompts, waiting in its own batch job.
    their_campaign = Campaign.dangerously_unscoped.create(tenant=other_tenant, name="Theirs")
    theirs = CampaignRun.dangerously_unscoped.create(
        tenant=other_tenant, campaign=their_campaign, status=RunStatus.RUNNING, mode=RunMode.BATCH
    )
    their_contacts = {
        Contact.dangerously_unscoped.create(tenant=other_tenant, external_id=f"g{i}", email=f"g{i}@example.com").pk
        for i in range(3)
    }
    BatchRecord.dangerously_unscoped.bulk_create(
        BatchRecord(tenant=other_tenant, run=theirs, contact_id=pk, fields={}) for pk in their_contacts
    )
    assert BatchRecord.objects.count() == N and set(BatchRecord.objects.values_list("run", flat=True)) == {mine.pk}
    assert not BatchRecord.objects.filter(run=theirs).exists()
    with tenant_scope(other_tenant):
        assert set(BatchRecord.objects.values_list("contact", flat=True)) == their_contacts
        assert not BatchRecord.objects.filter(run=mine).exists()
    assert set(BatchRecord.objects.for_tenant(other_tenant).values_list("contact", flat=True)) == their_contacts


def test_a_guardrail_on_drafts_screens_batch_answers_too(
    batch_settings, eager_tasks, scoped, tenant, campaign, emulator, django_capture_on_commit_callbacks
):
    batch_settings.LLM_MAX_ATTEMPTS = 2
    emulator.guardrails.define("gr-bulk", words=["Bulk7"], version="1")
    tenant.bedrock_guardrail_id, tenant.bedrock_guardrail_version, tenant.guardrail_use = "gr-bulk", "1", "drafts"
    tenant.save()
    run = launch(campaign, django_capture_on_commit_callbacks)
    assert (run.status, run.mode, run.generated, run.failed) == (RunStatus.COMPLETED, RunMode.BATCH, N - 1, 1)
    blocked = GeneratedEmail.objects.get(run=run, status=EmailStatus.FAILED)
    assert blocked.contact.first_name == "Bulk7" and blocked.attempts == 2
    assert blocked.failure_reason.startswith("blocked by the tenant's Bedrock guardrail")
    # Every batch answer screened once, the blocked one written again on-demand and screened again.
    assert operations(emulator, "ApplyGuardrail") == N + 1 and operations(emulator, "Converse") == 1


def test_a_batch_run_whose_collection_fails_is_finished_on_demand(
    batch_settings, eager_tasks, scoped, campaign, emulator, monkeypatch, django_capture_on_commit_callbacks
):
    def no_room(**kwargs):
        raise RateLimitTimeout("rate limit: no room within 600s")

    monkeypatch.setattr(batch, "records_store", no_room)
    run = launch(campaign, django_capture_on_commit_callbacks)
    assert (run.status, run.mode, run.generated) == (RunStatus.COMPLETED, RunMode.ON_DEMAND, N)
    assert run.mode_reason.startswith("collecting the batch job failed: RateLimitTimeout")
    emails = GeneratedEmail.objects.filter(run=run)
    assert emails.count() == emails.values("contact").distinct().count() == N
    assert operations(emulator, "CreateModelInvocationJob") == 1 and operations(emulator, "Converse") == N


@pytest.mark.worker
def test_a_throttled_batch_submission_is_tried_again_by_the_task(start_worker, batch_settings, campaign, emulator):
    emulator.configure(status_step_ms=20)
    emulator.configure("CreateModelInvocationJob", fail_next=2, fail_with="throttle")  # both of botocore's tries
    # The judge off: its Converse calls after collection would blur "no draft was written on demand" below.
    worker = start_worker(BEDROCK_BATCH_MIN_CONTACTS="100", BEDROCK_BATCH_BUCKET=BUCKET, BEDROCK_BATCH_ROLE_ARN=ROLE,
                          BEDROCK_BATCH_POLL_SECONDS="1", AWS_MAX_ATTEMPTS="2", JUDGE_DRAFTS="false")  # fmt: skip
    client = api_client(campaign.tenant)
    run_id = client.post(f"/api/v1/campaigns/{campaign.pk}/launch/", {}, format="json").json()["id"]
    runs = CampaignRun.dangerously_unscoped.filter(pk=run_id)
    wait_for(lambda: runs.get().status == RunStatus.COMPLETED, worker=worker, what="the run to complete")
    run = runs.get()
    assert (run.mode, run.batch_status, run.generated) == (RunMode.BATCH, "Completed", N)
    assert operations(emulator, "CreateModelInvocationJob", 429) == 2
    assert operations(emulator, "CreateModelInvocationJob") == 1 and operations(emulator, "Converse") == 0
