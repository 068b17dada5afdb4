"""Reliability with real processes: flaky models, a worker killed mid-run, one active run per campaign."""

import pytest

from campaigns import generation, services
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from tenants.scoping import tenant_scope
from tests.conftest import api_client, bulk_catalog
from tests.workers import wait_for


def test_a_run_completes_when_a_fifth_of_model_calls_fail(bedrock_settings, tenant, emulator):
    bedrock_settings.LLM_CONCURRENCY = 32
    bulk_catalog(tenant, n_contacts=500)
    emulator.configure(throttle_rate=0.1, error_rate=0.1)
    with tenant_scope(tenant):
        campaign = Campaign.objects.create(tenant=tenant, name="flaky", n_items=2)
        run = services.campaign_launch(campaign=campaign)
        for chunk in services.run_start(run=run):
            generation.run_generate_chunk(run=run, contact_ids=chunk)
        run.refresh_from_db()
        emails = GeneratedEmail.objects.filter(run=run)
        assert run.status == RunStatus.COMPLETED and run.total == 500
        assert emails.count() == 500 and emails.values("contact").distinct().count() == 500
        assert not emails.exclude(status__in=[EmailStatus.DRAFT, EmailStatus.FAILED]).exists()
        assert not emails.filter(status=EmailStatus.FAILED, failure_reason="").exists()
        assert emails.filter(status=EmailStatus.DRAFT).count() > 450  # retries absorb most failures
    faults = emulator.requests.filter(operation="Converse", status=429) + [
        r for r in emulator.requests.filter(operation="Converse") if r.status >= 500
    ]
    assert len(faults) > 50  # the emulator really did fail about a fifth of the calls


@pytest.mark.worker
def test_a_killed_worker_loses_no_work_and_writes_nothing_twice(start_worker, tenant, bedrock_settings, emulator):
    bulk_catalog(tenant, n_contacts=60)
    emulator.configure(latency_ms=300)
    env = {
        "CAMPAIGN_CHUNK_SIZE": "5",
        "LLM_CONCURRENCY": "2",
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_RESTORE_INTERVAL": "1",
    }
    first = start_worker(**env)
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="crash", n_items=2)
    launched = api_client(tenant).post(f"/api/v1/campaigns/{campaign.pk}/launch/", {}, format="json")
    run = CampaignRun.dangerously_unscoped.get(pk=launched.json()["id"])
    emails = GeneratedEmail.dangerously_unscoped.filter(run=run)
    wait_for(lambda: emails.count() >= 10, worker=first, what="the first emails")
    first.kill()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and emails.count() < 60

    second = start_worker(**env)
    wait_for(lambda: CampaignRun.dangerously_unscoped.get(pk=run.pk).status == RunStatus.COMPLETED, worker=second,
             what="the run to complete after the crash")  # fmt: skip
    run.refresh_from_db()
    assert (run.total, run.generated, run.failed) == (60, 60, 0)
    assert emails.count() == 60 and emails.values("contact").distinct().count() == 60
