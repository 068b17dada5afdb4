"""A test send: a draft goes to the reviewer's own address, marked as a test, through the real mail path (aiosmtpd
on loopback), and nothing about the email changes: not its status, and never to its contact. The recipient's own
unsubscribe link is not in it (a click on a test would unsubscribe someone else)."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from bench.desk_seed import seed
from campaigns.models import EmailEvent, EmailStatus, GeneratedEmail

DECIDE = "admin:campaigns_generatedemail_desk_decide"


@pytest.fixture
def drafts(db):
    mine = seed(n_drafts=3, slug="mine", username="rita")
    theirs = seed(n_drafts=2, slug="theirs", username="otto")
    get_user_model().objects.filter(username="rita").update(email="rita@northwind.example")
    client = Client()
    client.login(username="rita", password="pw-rita-123")
    return client, mine, theirs


def ask_test_send(client, email_id):
    return client.post(
        reverse(DECIDE, args=[email_id]), json.dumps({"action": "test"}), content_type="application/json"
    )


def test_a_test_send_reaches_the_reviewer_marked_as_a_test_and_changes_nothing(drafts, smtp_server):
    client, (tenant, run), _ = drafts
    email = GeneratedEmail.dangerously_unscoped.filter(run=run).select_related("contact").order_by("pk").first()
    answer = ask_test_send(client, email.pk)
    assert answer.status_code == 200 and answer.json()["sent_to"] == "rita@northwind.example"
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["rita@northwind.example"] and not smtp_server.to(email.contact.email)
    message = received.message
    assert message["Subject"] == f"[Test] {email.subject}" and message["X-Test-Send"] == "yes"
    assert message["List-Unsubscribe"] is None and "maya@northwind.example" in message["From"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert email.body.split("\n")[0] in text and email.contact.first_name in html
    assert email.unsubscribe_url not in text + html and "test send" in text.lower()
    email.refresh_from_db()
    assert email.status == EmailStatus.DRAFT and not email.message_id and email.sent_at is None
    (event,) = EmailEvent.dangerously_unscoped.filter(email=email)
    assert (event.kind, event.actor, event.detail, event.status) == (
        "test_sent", "rita", {"to": "rita@northwind.example"}, "draft"
    )  # fmt: skip
    assert answer.json()["card"]["events"][-1]["kind"] == "Test sent"


def test_without_an_address_of_ones_own_nothing_is_sent(drafts, smtp_server):
    client, (_, run), _ = drafts
    get_user_model().objects.filter(username="rita").update(email="")
    answer = ask_test_send(client, GeneratedEmail.dangerously_unscoped.filter(run=run).first().pk)
    assert answer.status_code == 400 and "no email address" in answer.json()["error"]
    assert not smtp_server.received and not EmailEvent.dangerously_unscoped.exists()


def test_a_refused_test_send_says_what_the_server_said(drafts, smtp_server):
    client, (_, run), _ = drafts
    smtp_server.refuse["rita@northwind.example"] = "550 5.1.1 no such mailbox"
    email = GeneratedEmail.dangerously_unscoped.filter(run=run).first()
    answer = ask_test_send(client, email.pk)
    assert answer.status_code == 502 and "550 5.1.1 no such mailbox" in answer.json()["error"]
    assert GeneratedEmail.dangerously_unscoped.get(pk=email.pk).status == EmailStatus.DRAFT
    assert not EmailEvent.dangerously_unscoped.filter(email=email).exists()


def test_another_tenants_draft_or_one_without_text_is_not_test_sent(drafts, smtp_server):
    client, (_, run), (_, their_run) = drafts
    assert (
        ask_test_send(client, GeneratedEmail.dangerously_unscoped.filter(run=their_run).first().pk).status_code == 404
    )
    failed = GeneratedEmail.dangerously_unscoped.filter(run=run).first()
    GeneratedEmail.dangerously_unscoped.filter(pk=failed.pk).update(status=EmailStatus.FAILED, subject="", body="")
    answer = ask_test_send(client, failed.pk)
    assert answer.status_code == 400 and "nothing to send" in answer.json()["error"]
    assert not smtp_server.received
