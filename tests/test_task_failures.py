"""What a chunk task does when its work fails for good: every contact still ends with an email or a failure that
says why (the batch tasks' side is in test_batch.py). The fault is injected into a collaborator; the task, the
emulator (over boto3) and the database are real."""

import pytest

from campaigns import generation, services, tasks
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from routing.ratelimit import RateLimitTimeout


def test_a_rate_limit_timeout_is_worth_a_retry():
    assert isinstance(RateLimitTimeout("no room"), tasks.RETRYABLE)


@pytest.fixture
def eager_tasks():
    tasks.run_generate_chunk.app.conf.task_always_eager = True
    yield
    tasks.run_generate_chunk.app.conf.task_always_eager = False


def test_a_chunk_that_fails_for_good_stores_its_contacts_as_failed_with_the_reason(
    bedrock_settings, eager_tasks, scoped, tenant, catalog, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("the recommender's model file is corrupt")

    monkeypatch.setattr(generation, "recommender_for", broken)
    campaign = Campaign.objects.create(tenant=tenant, name="doomed")
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        run = services.campaign_launch(campaign=campaign)
    run = CampaignRun.objects.get(campaign=campaign)
    emails = GeneratedEmail.objects.filter(run=run)
    assert emails.count() == run.total == len(catalog[0]) and (run.status, run.failed) == (
        RunStatus.COMPLETED,
        run.total,
    )
    for email in emails:
        assert email.status == EmailStatus.FAILED
        assert email.failure_reason == "not written: RuntimeError: the recommender's model file is corrupt"
    assert "RuntimeError" in run.error
