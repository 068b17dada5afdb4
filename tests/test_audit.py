"""The audit log: every decision on an email (approve, edit, reject and why, a rewrite asked for) and every step
of its sending is an EmailEvent, written with the change it records; an edit keeps the model's text beside the
person's; a regeneration can be told to leave a pick out."""

import pytest

from campaigns import generation, sending, services
from campaigns.models import Campaign, EmailEvent, EmailStatus, EventKind, GeneratedEmail, InvalidTransition
from tests.test_regenerate import eager_tasks  # noqa: F401  (a fixture)


@pytest.fixture
def drafts(bedrock_settings, tenant, catalog):
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="audited", n_items=2)
    run = services.campaign_launch(campaign=campaign, limit=4)
    for chunk in services.run_start(run=run, limit=4):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    return list(GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk"))


def kinds(email):
    return list(EmailEvent.dangerously_unscoped.filter(email=email).values_list("kind", "actor", "status"))


def test_every_decision_is_logged_with_who_and_why(drafts):
    approved, edited, rejected, _ = drafts
    approved.approve(by="rita")
    rejected.reject(by="sam", reason="  Too pushy  ")
    assert kinds(approved) == [(EventKind.APPROVED, "rita", EmailStatus.APPROVED)]
    event = EmailEvent.dangerously_unscoped.get(email=rejected)
    assert (event.kind, event.actor, event.detail, event.tenant_id) == ("rejected", "sam", {"reason": "Too pushy"},
                                                                         rejected.tenant_id)  # fmt: skip
    with pytest.raises(InvalidTransition):
        approved.approve(by="sam")  # a lost race writes nothing
    assert len(kinds(approved)) == 1


def test_an_edit_keeps_the_models_text_and_logs_what_changed(drafts):
    email = drafts[1]
    model_subject, model_body = email.subject, email.body
    email.edit_and_approve(by="rita", subject=model_subject, body=model_body + "\n\nP.S. See you Friday.")
    email.refresh_from_db()
    assert (email.original_subject, email.original_body) == (model_subject, model_body)
    assert email.body.endswith("See you Friday.") and email.edited and email.status == EmailStatus.APPROVED
    event = EmailEvent.dangerously_unscoped.get(email=email)
    assert (event.kind, event.detail) == (EventKind.EDITED, {"subject": False, "body": True})


def test_an_unchanged_edit_is_a_plain_approval(drafts):
    email = drafts[0]
    email.edit_and_approve(by="rita", subject=email.subject, body=email.body)
    email.refresh_from_db()
    assert not email.edited and email.original_body == "" and kinds(email)[0][0] == EventKind.APPROVED


def test_an_oversized_edit_is_refused_and_keeps_the_draft(drafts):
    email = drafts[0]
    with pytest.raises(Exception, match="at most 300"):
        email.edit_and_approve(by="rita", subject="s" * 301, body="b")
    email.refresh_from_db()
    assert email.status == EmailStatus.DRAFT and not kinds(email)


def test_a_regeneration_leaves_out_the_excluded_pick_and_keeps_the_feedback(
    drafts,
    eager_tasks,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    email = drafts[3]
    dropped = email.items[0]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        services.email_regenerate_request(email=email, feedback="shorter", exclude=(dropped,), by="rita")
    email.refresh_from_db()
    assert email.status == EmailStatus.DRAFT and email.feedback == "shorter"
    assert dropped not in [item["id"] for item in email.items] and email.items
    assert [k for k, *_ in kinds(email)] == [EventKind.REGENERATE_REQUESTED, EventKind.REGENERATED]
    asked = EmailEvent.dangerously_unscoped.get(email=email, kind=EventKind.REGENERATE_REQUESTED)
    assert (asked.actor, asked.detail) == ("rita", {"feedback": "shorter", "exclude": [dropped]})


def test_excluding_an_item_that_is_not_a_pick_is_a_clear_error(drafts):
    with pytest.raises(services.CampaignError, match="not among this email's picks"):
        services.email_regenerate_request(email=drafts[0], exclude=("nope",))
    drafts[0].refresh_from_db()
    assert drafts[0].status == EmailStatus.DRAFT


def test_sending_steps_are_logged(drafts, settings, mailoutbox):
    email = drafts[0]
    email.approve(by="rita")
    assert sending.email_send(email=email) == EmailStatus.SENT
    steps = [k for k, *_ in kinds(email)]
    assert steps == [EventKind.APPROVED, EventKind.SENDING, EventKind.SENT]
    message_id = EmailEvent.dangerously_unscoped.get(email=email, kind=EventKind.SENDING).detail["message_id"]
    assert message_id == mailoutbox[0].extra_headers["Message-ID"]


def test_generation_records_the_checks_it_made(drafts):
    email = drafts[0]
    assert isinstance(email.checks, list) and email.attempts >= 1
    assert len(email.checks) == email.attempts - 1  # each refused answer, and why
    assert email.items[0]["score"] is not None
