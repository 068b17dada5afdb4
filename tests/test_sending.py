"""Sending through a real SMTP server (aiosmtpd): hostile and unusual names, refusals that are final or passing,
a reply lost after the message went over, and claims left behind by a worker that died."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from campaigns import sending, tasks
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail
from datasets.models import Contact
from saas.celery import app as celery_app
from tests.conftest import api_client
from tests.workers import wait_for

API = "/api/v1"
HOSTILE = "Eve\nBcc: x@y"


def contact(tenant, n: int, *, first_name: str = "Pat", last_name: str = "", email: str | None = None) -> Contact:
    return Contact.dangerously_unscoped.create(
        tenant=tenant,
        external_id=f"c{n}",
        email=email or f"person{n}@example.com",
        first_name=first_name,
        last_name=last_name,
    )


def approved_run(tenant, contacts: list[Contact]) -> CampaignRun:
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name=f"send to {contacts[0].external_id}")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status="completed")
    GeneratedEmail.dangerously_unscoped.bulk_create(
        GeneratedEmail(
            tenant=tenant,
            run=run,
            contact=c,
            subject=f"Picks for {c.first_name}",
            body="Hello there.",
            status=EmailStatus.APPROVED,
        )
        for c in contacts
    )
    return run


def emails_of(run) -> dict[str, GeneratedEmail]:
    return {e.contact.email: e for e in GeneratedEmail.dangerously_unscoped.filter(run=run).select_related("contact")}


def send_in_process(run) -> int:
    """The run's send (a fan-out of email_send tasks), each task run here as it is enqueued: what workers do, in
    order, without one. Returns how many were queued."""
    return sending.run_send_approved(
        run=run, enqueue=lambda pk, tenant_id: tasks.email_send.apply((pk, tenant_id)).get()
    )


def one_email(tenant, **names) -> GeneratedEmail:
    run = approved_run(
        tenant, [contact(tenant, Contact.dangerously_unscoped.filter(tenant=tenant).count() + 1, **names)]
    )
    return GeneratedEmail.dangerously_unscoped.select_related("contact", "tenant").get(run=run)


@pytest.mark.parametrize(
    "first_name, last_name, shown",
    [
        ("Ann", '"Smith, Jr."', 'Ann "Smith, Jr."'),
        ("Zoë", "Åström-Müller", "Zoë Åström-Müller"),
        ("李", '小龍 "the dragon"', '李 小龍 "the dragon"'),
        ("O'Brien,", "Pat", "O'Brien, Pat"),
        (HOSTILE, "", "Eve Bcc: x@y"),  # a newline in a name is data, not a header
    ],
)
def test_display_names_arrive_exactly_as_written(scoped, tenant, smtp_server, first_name, last_name, shown):
    email = one_email(tenant, first_name=first_name, last_name=last_name)
    assert sending.email_send(email=email) == EmailStatus.SENT
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["person1@example.com"]  # the envelope names nobody else
    message = received.message
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (shown, "person1@example.com")
    headers = received.data.split(b"\r\n\r\n", 1)[0]
    assert "Bcc" not in message and not any(line.lower().startswith(b"bcc:") for line in headers.split(b"\r\n"))
    assert headers.isascii()
    if not shown.isascii():
        assert b"=?utf-8?" in received.data  # RFC 2047, decoded back to the same name above
    assert message["From"].addresses[0].addr_spec == "hello@acme.example"


def test_a_sender_name_with_a_comma_is_one_address(scoped, tenant, smtp_server):
    tenant.sender_name = "Ana, Head of Picks"
    tenant.save()
    assert sending.email_send(email=one_email(tenant)) == EmailStatus.SENT
    (sender,) = smtp_server.received[0].message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Ana, Head of Picks", "hello@acme.example")


def test_a_subject_with_a_newline_is_one_header_line(scoped, tenant, smtp_server):
    email = one_email(tenant)
    email.subject = "Your picks\nBcc: x@y"
    email.save()
    assert sending.email_send(email=email) == EmailStatus.SENT
    (received,) = smtp_server.received
    assert received.message["Subject"] == "Your picks Bcc: x@y" and "Bcc" not in received.message
    assert received.rcpt_tos == ["person1@example.com"]


def test_bad_recipients_fail_alone_and_the_run_goes_on(scoped, tenant, smtp_server):
    contacts = [
        contact(tenant, 1, first_name=HOSTILE),
        contact(tenant, 2, email="eve@example.com\nBcc: x@y"),
        contact(tenant, 3, email="gone@example.com"),
        *(contact(tenant, n, first_name=f"Ordinary{n}") for n in range(4, 7)),
    ]
    smtp_server.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: mailbox unavailable"
    run = approved_run(tenant, contacts)

    assert send_in_process(run) == 6
    assert sending.run_send_counts(run=run) == {EmailStatus.SENT: 4, EmailStatus.SEND_FAILED: 2}
    emails = emails_of(run)
    for n in (1, 4, 5, 6):
        assert emails[f"person{n}@example.com"].status == EmailStatus.SENT
        assert len(smtp_server.to(f"person{n}@example.com")) == 1
    injected = emails["eve@example.com\nBcc: x@y"]
    assert injected.status == EmailStatus.SEND_FAILED and "invalid address" in injected.send_error
    gone = emails["gone@example.com"]
    assert (
        gone.status == EmailStatus.SEND_FAILED and "550" in gone.send_error and "mailbox unavailable" in gone.send_error
    )
    assert not smtp_server.to("x@y") and not smtp_server.to("gone@example.com")

    delivered = len(smtp_server.received)
    assert send_in_process(run) == 0
    assert tasks.run_send_approved.apply((run.pk, tenant.pk)).get() == 0
    assert len(smtp_server.received) == delivered == 4  # a retry of the run's send resends nothing


@pytest.fixture
def in_process_celery():
    """Tasks run in the request, as they do without a broker (CELERY_TASK_ALWAYS_EAGER): a task's failure is the
    request's."""
    before, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, True
    yield
    celery_app.conf.task_always_eager = before


def test_the_send_endpoint_answers_with_the_outcome_never_500(transactional_db, tenant, smtp_server, in_process_celery):
    contacts = [
        contact(tenant, 1, first_name=HOSTILE),
        contact(tenant, 2, email="gone@example.com"),
        contact(tenant, 3, first_name='Ann "Smith, Jr."'),
        contact(tenant, 4),
    ]
    smtp_server.refuse["gone@example.com"] = "553 5.1.3 not a valid mailbox"
    run = approved_run(tenant, contacts)
    client = api_client(tenant)
    response = client.post(f"{API}/runs/{run.pk}/send/")  # no transaction open: the task runs at once
    assert response.status_code == 202, response.content
    assert response.json()["emails"] == {"sent": 3, "send_failed": 1}
    listing = client.get(f"{API}/emails/?run={run.pk}&status=send_failed").json()["results"]
    assert [(row["contact"], row["send_error"][:3]) for row in listing] == [("c2", "553")]
    again = client.post(f"{API}/runs/{run.pk}/send/")
    assert again.status_code == 202 and again.json()["emails"] == {"sent": 3, "send_failed": 1}
    assert len(smtp_server.received) == 3


def test_a_passing_refusal_is_retried_and_nothing_else_is_resent(scoped, tenant, smtp_server):
    contacts = [contact(tenant, n) for n in range(1, 4)]
    smtp_server.defer["person2@example.com"] = ["451 4.3.0 try again later"]
    run = approved_run(tenant, contacts)

    assert send_in_process(run) == 3
    assert sending.run_send_counts(run=run) == {EmailStatus.SENT: 2, EmailStatus.APPROVED: 1}
    deferred = emails_of(run)["person2@example.com"]
    assert deferred.status == EmailStatus.APPROVED and "451" in deferred.send_error
    assert send_in_process(run) == 1
    assert sending.run_send_counts(run=run) == {EmailStatus.SENT: 3}
    assert [len(smtp_server.to(c.email)) for c in contacts] == [1, 1, 1]


def test_a_refused_connection_is_passing_and_leaves_the_email_to_retry(scoped, tenant, smtp_server, settings):
    settings.EMAIL_PORT = 9  # nothing listens there
    email = one_email(tenant)
    with pytest.raises(sending.SendDeferred):
        sending.email_send(email=email)
    email.refresh_from_db()
    assert email.status == EmailStatus.APPROVED and "ConnectionRefusedError" in email.send_error


def test_the_send_tasks_back_off_with_jitter():
    for task in (tasks.run_send_approved, tasks.email_send):
        assert task.retry_backoff and task.retry_jitter and task.acks_late


def test_a_message_whose_reply_was_lost_is_never_resent(scoped, tenant, smtp_server, settings):
    settings.EMAIL_TIMEOUT = 1
    smtp_server.data_delay = 1.5  # the server has the whole message; its 250 comes after the client gave up
    run = approved_run(tenant, [contact(tenant, 1), contact(tenant, 2)])

    assert send_in_process(run) == 2
    assert sending.run_send_counts(run=run) == {EmailStatus.SEND_UNKNOWN: 2}
    for email in emails_of(run).values():
        assert email.status == EmailStatus.SEND_UNKNOWN and email.message_id
        assert "cannot know whether" in email.send_error
    smtp_server.data_delay = 0
    assert send_in_process(run) == 0
    assert len(smtp_server.to("person1@example.com")) == 1 and len(smtp_server.to("person2@example.com")) == 1


# Defect 6: claims left behind by a worker that died after claiming.


def dead_worker_claim(email: GeneratedEmail) -> None:
    """What a worker killed after the claim leaves: the email in sending, nothing handed to SMTP."""
    claim = GeneratedEmail.dangerously_unscoped.filter(pk=email.pk, status=EmailStatus.APPROVED)
    assert claim.update(status=EmailStatus.SENDING, send_claimed_at=timezone.now())


def later(seconds: float):
    return mock.patch("django.utils.timezone.now", return_value=timezone.now() + timedelta(seconds=seconds))


def test_a_claim_inside_its_lease_is_left_alone(scoped, tenant, smtp_server, settings):
    email = one_email(tenant)
    dead_worker_claim(email)
    with later(settings.EMAIL_SEND_LEASE_SECONDS - 5):
        assert sending.email_send(email=email) == EmailStatus.SENDING  # the redelivered task
        assert sending.email_claims_expire() == 0
    email.refresh_from_db()
    assert email.status == EmailStatus.SENDING and smtp_server.received == []


def test_a_redelivered_task_turns_an_expired_claim_into_unknown(scoped, tenant, smtp_server, settings):
    email = one_email(tenant)
    dead_worker_claim(email)
    with later(settings.EMAIL_SEND_LEASE_SECONDS + 5):
        assert tasks.email_send.apply((email.pk, tenant.pk)).get() == EmailStatus.SEND_UNKNOWN
        assert tasks.run_send_approved.apply((email.run_id, tenant.pk)).get() == 0
    email.refresh_from_db()
    assert email.status == EmailStatus.SEND_UNKNOWN and "cannot know whether" in email.send_error
    assert smtp_server.received == []  # never a silent resend


def test_the_sweep_finds_expired_claims_of_every_tenant(tenant, other_tenant, smtp_server, settings):
    mine, theirs = one_email(tenant), one_email(other_tenant)
    for email in (mine, theirs):
        dead_worker_claim(email)
    with later(settings.EMAIL_SEND_LEASE_SECONDS + 5):
        assert tasks.email_claims_expire.apply().get() == 2
    statuses = GeneratedEmail.dangerously_unscoped.values_list("status", flat=True)
    assert set(statuses) == {EmailStatus.SEND_UNKNOWN} and smtp_server.received == []


def test_the_sweep_is_declared_in_code_with_an_expiry():
    entry = celery_app.conf.beat_schedule["campaigns-expire-send-claims"]
    assert entry["task"] == "campaigns.tasks.email_claims_expire"
    assert entry["options"]["expires"] <= entry["schedule"].run_every.total_seconds()


def unknown_email(tenant, settings) -> GeneratedEmail:
    email = one_email(tenant)
    dead_worker_claim(email)
    with later(settings.EMAIL_SEND_LEASE_SECONDS + 5):
        sending.email_claims_expire()
    email.refresh_from_db()
    return email


def test_a_person_marks_an_unknown_email_as_sent(tenant, smtp_server, settings):
    email = unknown_email(tenant, settings)
    client = api_client(tenant)
    shown = client.get(f"{API}/emails/{email.pk}/").json()
    assert shown["status"] == "send_unknown" and "cannot know whether" in shown["send_error"]
    marked = client.post(f"{API}/emails/{email.pk}/mark_sent/")
    assert marked.status_code == 200, marked.content
    body = marked.json()
    assert body["status"] == "sent" and body["send_resolved_by"] and body["send_resolved_at"]
    assert client.post(f"{API}/emails/{email.pk}/mark_sent/").status_code == 409
    assert smtp_server.received == []


def test_a_person_sends_an_unknown_email_again(tenant, smtp_server, settings, django_capture_on_commit_callbacks):
    email = unknown_email(tenant, settings)
    client = api_client(tenant)
    with django_capture_on_commit_callbacks() as dispatched:
        response = client.post(f"{API}/emails/{email.pk}/send_again/")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "approved" and response.json()["send_resolved_by"]
    assert len(dispatched) == 1  # the send itself is a task, after commit
    email.refresh_from_db()
    assert tasks.email_send.apply((email.pk, tenant.pk)).get() == EmailStatus.SENT
    assert len(smtp_server.received) == 1
    assert client.post(f"{API}/emails/{email.pk}/send_again/").status_code == 409


def test_resolving_is_tenant_scoped(tenant, other_tenant, smtp_server, settings):
    theirs = unknown_email(other_tenant, settings)
    client = api_client(tenant)
    for action in ("mark_sent", "send_again"):
        assert client.post(f"{API}/emails/{theirs.pk}/{action}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == EmailStatus.SEND_UNKNOWN and not theirs.send_resolved_by


def test_the_admin_resolves_unknown_emails(
    tenant, other_tenant, staff_client, smtp_server, settings, in_process_celery, django_capture_on_commit_callbacks
):
    mine, again = unknown_email(tenant, settings), unknown_email(tenant, settings)
    theirs = unknown_email(other_tenant, settings)
    url = "/admin/campaigns/generatedemail/"
    listing = staff_client.get(f"{url}?status__exact=send_unknown")
    assert listing.status_code == 200 and "send unknown" in listing.content.decode().lower()
    response = staff_client.post(url, {"action": "mark_sent", "_selected_action": [mine.pk, theirs.pk]})
    assert response.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, mine.send_resolved_by) == (EmailStatus.SENT, "rita")
    assert theirs.status == EmailStatus.SEND_UNKNOWN  # another tenant's email is not in the admin's selection
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url, {"action": "send_again", "_selected_action": [again.pk, theirs.pk]})
    again.refresh_from_db()
    theirs.refresh_from_db()
    assert (again.status, again.send_resolved_by) == (EmailStatus.SENT, "rita") and len(smtp_server.received) == 1
    assert theirs.status == EmailStatus.SEND_UNKNOWN


def test_the_admin_send_actions_never_fail_on_a_bad_recipient(
    tenant, staff_client, smtp_server, in_process_celery, django_capture_on_commit_callbacks
):
    smtp_server.refuse["gone@example.com"] = "550 5.1.1 mailbox unavailable"
    run = approved_run(tenant, [contact(tenant, 1, email="gone@example.com"), contact(tenant, 2, first_name=HOSTILE)])
    emails = emails_of(run)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/campaigns/generatedemail/",
            {"action": "send_now", "_selected_action": [emails["gone@example.com"].pk]},
        )
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/campaigns/campaignrun/", {"action": "send_approved", "_selected_action": [run.pk]}
        )
    assert response.status_code == 302
    assert {e.contact.email: e.status for e in emails_of(run).values()} == {
        "gone@example.com": EmailStatus.SEND_FAILED,
        "person2@example.com": EmailStatus.SENT,
    }


@pytest.mark.worker
def test_a_worker_retries_a_passing_refusal_with_backoff(start_worker, tenant, smtp_server):
    smtp_server.defer["person2@example.com"] = ["451 4.3.0 greylisted", "421 4.7.0 try again later"]
    worker = start_worker(EMAIL_BACKEND="smtp", EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_server.port))
    contacts = [contact(tenant, n) for n in range(1, 4)]
    run = approved_run(tenant, contacts)
    assert api_client(tenant).post(f"{API}/runs/{run.pk}/send/").status_code == 202
    sent = GeneratedEmail.dangerously_unscoped.filter(run=run, status=EmailStatus.SENT)
    wait_for(lambda: sent.count() == 3, worker=worker, what="every email to be sent")
    assert smtp_server.rcpt_attempts.count("person2@example.com") == 3  # two refusals, then accepted
    assert [len(smtp_server.to(c.email)) for c in contacts] == [1, 1, 1]
    assert "Retry in" in worker.output()  # the task's own retry, with a countdown


@pytest.mark.worker
def test_a_worker_killed_mid_send_leaves_an_unknown_email_not_a_resend(start_worker, tenant, smtp_server):
    smtp_server.data_delay = 60  # the worker hands the message over, then waits for a reply that is slow to come
    env = {
        "EMAIL_BACKEND": "smtp",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_RESTORE_INTERVAL": "1",
    }
    first = start_worker(**env)
    run = approved_run(tenant, [contact(tenant, 1)])
    email = GeneratedEmail.dangerously_unscoped.get(run=run)
    tasks.email_send.delay(email.pk, tenant.pk)
    wait_for(lambda: len(smtp_server.received) == 1, worker=first, what="the message to reach the server")
    first.kill()
    email.refresh_from_db()
    assert email.status == EmailStatus.SENDING

    smtp_server.data_delay = 0
    second = start_worker(**env, EMAIL_SEND_LEASE_SECONDS="1")  # the redelivered task finds the lease run out
    unknown = GeneratedEmail.dangerously_unscoped.filter(pk=email.pk, status=EmailStatus.SEND_UNKNOWN)
    wait_for(unknown.exists, worker=second, what="the redelivered task to mark the email unknown")
    assert len(smtp_server.received) == 1


def test_the_tenant_names_its_reply_to_and_its_list(scoped, tenant, smtp_server):
    """Replies go where the tenant reads them, and mail clients see one list per tenant (RFC 2919 List-Id),
    non-ASCII brand names encoded."""
    tenant.brand_name, tenant.reply_to_email = "Zoë's Films", "replies@acme.example"
    tenant.save()
    assert sending.email_send(email=one_email(tenant)) == EmailStatus.SENT
    (received,) = smtp_server.received
    message = received.message
    assert [a.addr_spec for a in message["Reply-To"].addresses] == ["replies@acme.example"]
    assert message["List-Id"] == f"Zoë's Films <{tenant.slug}.acme.example>"
    assert received.data.split(b"\r\n\r\n", 1)[0].isascii()
    assert received.rcpt_tos == ["person1@example.com"]  # a Reply-To is not a recipient


def test_without_a_reply_to_replies_go_to_the_sender(scoped, tenant, smtp_server):
    assert sending.email_send(email=one_email(tenant)) == EmailStatus.SENT
    message = smtp_server.received[0].message
    assert message["Reply-To"] is None and message["List-Id"].endswith(f"<{tenant.slug}.acme.example>")


def test_a_reply_to_that_is_not_an_address_is_refused_on_the_tenant(tenant):
    from django.core.exceptions import ValidationError

    tenant.reply_to_email = "replies at acme"
    with pytest.raises(ValidationError, match="reply_to_email"):
        tenant.full_clean()
