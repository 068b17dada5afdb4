"""A campaign through a real Celery worker process and a real Redis broker, with the Bedrock provider
talking to the local emulator. Data is committed (transactional_db) so the worker sees it."""

import pytest

from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from routing.models import LLMCall
from saas.celery import app as celery_app
from tests.conftest import api_client, make_catalog
from tests.workers import wait_for

pytestmark = pytest.mark.worker


def test_campaign_runs_through_a_real_worker_and_broker(start_worker, tenant, bedrock_settings, emulator):
    assert celery_app.conf.task_always_eager is False
    worker = start_worker(CAMPAIGN_CHUNK_SIZE="2", JUDGE_DRAFTS="true")
    make_catalog(tenant, n_contacts=5, n_items=12)
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Worker run", n_items=2)
    client = api_client(tenant)

    launched = client.post(f"/api/v1/campaigns/{campaign.pk}/launch/", {}, format="json")
    assert launched.status_code == 202, launched.content
    run_id = launched.json()["id"]
    runs = CampaignRun.dangerously_unscoped.filter(pk=run_id)
    wait_for(lambda: runs.get().status == RunStatus.COMPLETED, worker=worker, what="the run to complete")

    run = runs.get()
    assert (run.total, run.generated, run.failed) == (5, 5, 0)
    emails = GeneratedEmail.dangerously_unscoped.filter(run_id=run_id).select_related("contact")
    assert emails.count() == 5
    assert all(e.contact.first_name in e.body and e.status == EmailStatus.DRAFT for e in emails)
    # The worker's judge scores each draft after its chunk: one cheap call each, besides the email's own.
    judged = emails.filter(judged_at__isnull=False, judge_score__isnull=False)
    wait_for(lambda: judged.count() == 5, worker=worker, what="the judge to score the five drafts")
    calls = LLMCall.dangerously_unscoped.filter(run_id=run_id)
    assert sorted(calls.values_list("task", flat=True)) == ["judge"] * 5 + [campaign.task] * 5
    assert len(emulator.requests.filter(operation="Converse", status=200)) == 10

    for email in emails[:2]:
        assert client.post(f"/api/v1/emails/{email.pk}/approve/").status_code == 200
    assert client.post(f"/api/v1/runs/{run_id}/send/").status_code == 202
    sent = GeneratedEmail.dangerously_unscoped.filter(run_id=run_id, status=EmailStatus.SENT)
    wait_for(lambda: sent.count() == 2, worker=worker, what="two emails to be sent")
    assert all(e.message_id and e.sent_at for e in sent)


def test_an_email_is_regenerated_by_a_real_worker(start_worker, tenant, bedrock_settings, emulator):
    worker = start_worker()
    contacts, _ = make_catalog(tenant, n_contacts=1, n_items=12)
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Worker regenerate", n_items=2)
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.COMPLETED, total=1)
    email = GeneratedEmail.dangerously_unscoped.create(
        tenant=tenant, run=run, contact=contacts[0], status=EmailStatus.FAILED, failure_reason="model call failed"
    )
    answer = api_client(tenant).post(f"/api/v1/emails/{email.pk}/regenerate/", {"feedback": "shorter"}, format="json")
    assert answer.status_code == 202 and answer.json()["status"] == "regenerating"
    emails = GeneratedEmail.dangerously_unscoped.filter(pk=email.pk)
    wait_for(lambda: emails.get().status != EmailStatus.REGENERATING, worker=worker, what="the regeneration")
    email = emails.get()
    assert (email.status, email.failure_reason) == (EmailStatus.DRAFT, "") and contacts[0].first_name in email.body
    assert CampaignRun.dangerously_unscoped.get(pk=run.pk).generated == 1
