"""SES's notifications through SNS: believed only when AWS signed them (SignatureVersion 1 and 2, the canonical
text for each type, the certificate's URL on AWS's SNS host, optionally the topic, and anymail's basic auth), then
recorded once per event: a hard bounce or complaint suppresses the address, soft bounces are counted until the
limit, a delivery resets the count. The List-Unsubscribe mailto's mail unsubscribes the token's contact.

Real parts throughout (PostgreSQL, the emulator over HTTP through boto3 for the send); only AWS's certificate
download is replaced."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from campaigns import sending
from campaigns.models import DeliveryReport, EmailEvent, EmailStatus, EventKind, ReportKind
from datasets.models import ConsentEvent, Contact, Suppression
from tests import sns as aws
from tests.test_sending import one_email

TRACKING, INBOUND = "/webhooks/ses/tracking/", "/webhooks/ses/inbound/"


@pytest.fixture
def signer(monkeypatch):
    return aws.install(monkeypatch)


@pytest.fixture
def sent(scoped, tenant, aws_emulator_env, settings):
    """An email sent through SES (the emulator, over HTTP): its provider message id is SES's MessageId."""
    emulator = aws_emulator_env  # its credentials and region; SES the only service asked (no Personalize bucket)
    settings.AWS_ENDPOINT_URLS, settings.AWS_MAX_ATTEMPTS = {"sesv2": emulator.url}, 3
    tenant.email_provider = "ses"
    tenant.save()
    email = one_email(tenant)
    assert sending.email_send(email=email) == EmailStatus.SENT
    email.refresh_from_db()
    assert email.provider_message_id == emulator.ses.messages()[0].message_id
    return email


@pytest.fixture
def stored(scoped, tenant):
    """An email as a send through SES leaves it (sent, SES's MessageId kept) but stored without the send: for the
    messages refused before any email is looked up, which would be recorded against it if they were believed."""
    email = one_email(tenant)
    email.status, email.provider_message_id = EmailStatus.SENT, f"0100{uuid.uuid4().hex}-000000"
    email.save(update_fields=["status", "provider_message_id"])
    return email


def reports(tenant):
    return DeliveryReport.objects.for_tenant(tenant)


def events(email, kind):
    return EmailEvent.objects.for_tenant(email.tenant_id).filter(email=email, kind=kind)


def test_a_signed_hard_bounce_is_recorded_once_and_suppresses_the_address(sent, signer, tenant):
    message = signer.sign(aws.notification(aws.bounce(sent.provider_message_id, sent.contact.email)))
    for _ in range(2):  # SNS delivers at least once: the second changes nothing
        reply = aws.post(Client(), TRACKING, message)
        assert reply.status_code == 200, reply.content
    (report,) = reports(tenant)
    assert (report.kind, report.address, report.provider, report.email_id) == (
        ReportKind.HARD_BOUNCE, "person1@example.com", "ses", sent.pk)  # fmt: skip
    assert report.event_id == f"{message['MessageId']}:person1@example.com"
    assert report.detail["bounceType"] == "Permanent"
    assert events(sent, EventKind.BOUNCED).count() == 1
    listed = Suppression.objects.for_tenant(tenant).get(address="person1@example.com")
    assert (listed.reason, listed.source, listed.note) == ("hard_bounce", "ses", "smtp; 550 5.1.1 user unknown")
    assert signer.fetched == [aws.CERT_URL]  # the certificate is fetched once and kept


def test_a_complaint_suppresses_and_a_delivery_is_only_noted(sent, signer, tenant):
    delivered = signer.sign(aws.notification(aws.delivery(sent.provider_message_id, sent.contact.email)))
    assert aws.post(Client(), TRACKING, delivered).status_code == 200
    assert events(sent, EventKind.DELIVERED).count() == 1
    assert not Suppression.objects.for_tenant(tenant).exists()
    complained = signer.sign(aws.notification(aws.complaint(sent.provider_message_id, sent.contact.email)), version="2")
    assert aws.post(Client(), TRACKING, complained).status_code == 200
    assert events(sent, EventKind.COMPLAINED).count() == 1
    assert Suppression.objects.for_tenant(tenant).get().reason == "complaint"
    assert sorted(reports(tenant).values_list("kind", flat=True)) == ["complaint", "delivered"]


def test_soft_bounces_suppress_at_the_limit_counted_since_the_last_delivery(sent, signer, tenant, settings):
    settings.SOFT_BOUNCE_LIMIT = 3
    start, to = datetime.now(UTC) - timedelta(hours=1), sent.contact.email

    def say(ses_event, minutes):
        message = signer.sign(aws.notification(ses_event, at=start + timedelta(minutes=minutes)))
        assert aws.post(Client(), TRACKING, message).status_code == 200

    soft = aws.bounce(sent.provider_message_id, to, "Transient", "MailboxFull", "smtp; 452 4.2.2 mailbox full")
    say(soft, 1)
    say(soft, 2)
    say(aws.delivery(sent.provider_message_id, to), 3)  # delivered since: the count starts again
    say(soft, 4)
    say(aws.bounce(sent.provider_message_id, to, "Undetermined", "Undetermined", "no reason given"), 5)
    assert not Suppression.objects.for_tenant(tenant).exists()
    assert events(sent, EventKind.SOFT_BOUNCED).count() == 4
    say(soft, 6)
    listed = Suppression.objects.for_tenant(tenant).get()
    assert listed.reason == "hard_bounce" and listed.note.startswith("3 soft bounces since its last delivery")
    assert "452 4.2.2 mailbox full" in listed.note


def test_a_report_about_no_email_of_ours_changes_nothing(db, signer, tenant):
    message = signer.sign(aws.notification(aws.bounce("0100-unknown-000000", "someone@example.com")))
    assert aws.post(Client(), TRACKING, message).status_code == 200
    assert not DeliveryReport.dangerously_unscoped.exists() and not Suppression.dangerously_unscoped.exists()


def tampered(message: dict) -> dict:
    inner = json.loads(message["Message"])
    inner["bounce"]["bouncedRecipients"][0]["emailAddress"] = "victim@example.com"
    return {**message, "Message": json.dumps(inner)}


def forgeries(signer, provider_message_id, to):
    good = aws.notification(aws.bounce(provider_message_id, to))
    other_key = aws.forger_key()
    return {
        "tampered message": (tampered(signer.sign(good)), "signature does not match"),
        "another key": (signer.sign(good, key=other_key), "signature does not match"),
        "no signature": ({k: v for k, v in signer.sign(good).items() if k != "Signature"}, "no Signature"),
        "not base64": ({**signer.sign(good), "Signature": "%%%"}, "not base64"),
        "version 3": ({**signer.sign(good), "SignatureVersion": "3"}, "is not 1 or 2"),
        "version 1 signed as 2": ({**signer.sign(good, version="2"), "SignatureVersion": "1"}, "does not match"),
        "subject added": ({**signer.sign(good), "Subject": "hi"}, "does not match"),
        "http cert": (signer.sign({**good, "SigningCertURL": aws.CERT_URL.replace("https", "http")}), "is not https"),
        "foreign host": (signer.sign({**good, "SigningCertURL": "https://evil.example/cert.pem"}), "is not https"),
        "lookalike host": (
            signer.sign({**good, "SigningCertURL": "https://sns.us-east-1.amazonaws.com.evil.example/c.pem"}),
            "is not https",
        ),  # fmt: skip
        "not a pem": (signer.sign({**good, "SigningCertURL": "https://sns.us-east-1.amazonaws.com/c.txt"}), ".pem"),
        "cert not found": (
            signer.sign({**good, "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem"}),
            "could not fetch",
        ),  # fmt: skip
        "no TopicArn": ({k: v for k, v in signer.sign(good).items() if k != "TopicArn"}, "no TopicArn"),
    }


@pytest.mark.parametrize("case", list(forgeries(aws.Signer(), "x", "y@example.com")))
def test_a_forged_or_broken_signature_is_refused_and_nothing_recorded(stored, signer, tenant, case):
    message, said = forgeries(signer, stored.provider_message_id, stored.contact.email)[case]
    reply = aws.post(Client(), TRACKING, message)
    assert reply.status_code == 400 and said in reply.content.decode()
    assert not reports(tenant).exists() and not Suppression.objects.for_tenant(tenant).exists()
    if case in ("http cert", "foreign host", "lookalike host", "not a pem"):
        assert signer.fetched == []  # never downloaded from where a forger points


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', json.dumps({"Type": "Notification"}).encode()])
def test_bodies_that_are_not_sns_messages_are_a_400(db, signer, body):
    reply = Client().post(TRACKING, data=body, content_type="text/plain", HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification")
    assert reply.status_code == 400 and reply.content


def test_only_the_listed_topics_are_taken_when_a_list_is_set(sent, signer, tenant, settings):
    settings.SNS_TOPIC_ARNS = ["arn:aws:sns:us-east-1:123456789012:another"]
    message = signer.sign(aws.notification(aws.bounce(sent.provider_message_id, sent.contact.email)))
    reply = aws.post(Client(), TRACKING, message)
    assert reply.status_code == 400 and "not in SNS_TOPIC_ARNS" in reply.content.decode()
    settings.SNS_TOPIC_ARNS = [aws.TOPIC]
    assert aws.post(Client(), TRACKING, message).status_code == 200
    assert reports(tenant).count() == 1


def test_the_webhook_secret_is_still_required_when_set(sent, signer, tenant, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "sns:s3cret"}
    message = signer.sign(aws.notification(aws.bounce(sent.provider_message_id, sent.contact.email)))
    assert aws.post(Client(), TRACKING, message).status_code == 401  # SNS sends basic auth only when asked
    wrong = "Basic " + base64.b64encode(b"sns:guess").decode()
    assert aws.post(Client(), TRACKING, message, HTTP_AUTHORIZATION=wrong).status_code == 400
    assert not reports(tenant).exists()
    right = "Basic " + base64.b64encode(b"sns:s3cret").decode()
    assert aws.post(Client(), TRACKING, message, HTTP_AUTHORIZATION=right).status_code == 200
    assert reports(tenant).count() == 1


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_confirmations_are_checked_over_their_own_keys(db, signer, settings, kind):
    settings.ANYMAIL = {**settings.ANYMAIL, "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": False}
    message = signer.sign(aws.confirmation(kind))
    assert aws.post(Client(), TRACKING, message).status_code == 200
    forged = {**message, "Token": message["Token"][::-1]}  # the token is signed: a swapped one is refused
    reply = aws.post(Client(), TRACKING, forged)
    assert reply.status_code == 400 and "does not match" in reply.content.decode()


def test_a_notification_with_a_subject_is_signed_over_it(sent, signer, tenant):
    message = signer.sign(aws.notification(aws.delivery(sent.provider_message_id, sent.contact.email), subject="x"))
    assert aws.post(Client(), TRACKING, message).status_code == 200
    assert reports(tenant).get().kind == ReportKind.DELIVERED


def test_a_null_subject_is_left_out_of_the_signed_text_as_sns_does(sent, signer, tenant):
    message = signer.sign({**aws.notification(aws.delivery(sent.provider_message_id, sent.contact.email)),
                           "Subject": None})  # fmt: skip
    assert aws.post(Client(), TRACKING, message).status_code == 200
    assert reports(tenant).get().kind == ReportKind.DELIVERED


def unsubscribe_mail(to: str) -> bytes:
    return (f"From: Pat <pat@example.com>\r\nTo: {to}\r\nSubject: unsubscribe\r\nMessage-ID: <1@example.com>\r\n"
            "\r\nunsubscribe\r\n").encode()  # fmt: skip


@pytest.fixture
def mailto(settings):
    settings.UNSUBSCRIBE_MAILTO_DOMAIN = "unsub.acme.example"


def test_mail_to_the_unsubscribe_mailto_unsubscribes_the_contact(scoped, tenant, signer, mailto):
    email = one_email(tenant)
    header = sending.build_message(email).extra_headers["List-Unsubscribe"]
    address = header.split("<mailto:")[1].split("?")[0]
    message = signer.sign(aws.notification(aws.received(unsubscribe_mail(address), address)))
    reply = aws.post(Client(), INBOUND, message)
    assert reply.status_code == 200, reply.content
    contact = Contact.objects.for_tenant(tenant).get(pk=email.contact_id)
    assert contact.unsubscribed
    event = ConsentEvent.objects.for_tenant(tenant).get(contact=contact)
    assert (event.subscribed, event.source, event.actor) == (False, "mailto", "recipient")
    assert Suppression.objects.for_tenant(tenant).get().address == contact.email


@pytest.mark.parametrize(
    "local", ["unsubscribe+WzEsMV0~1xaNFu~forgedforgedforgedforgedforgedforgedforge", "unsubscribe+", "someone"]
)
def test_a_forged_or_unknown_token_changes_nothing_and_is_answered_200(scoped, tenant, signer, mailto, local, caplog):
    email = one_email(tenant)
    address = f"{local}@unsub.acme.example"
    message = signer.sign(aws.notification(aws.received(unsubscribe_mail(address), address)))
    assert aws.post(Client(), INBOUND, message).status_code == 200  # else SNS retries for ever
    assert any("no valid token; nothing changed" in r.getMessage() for r in caplog.records)
    assert not Contact.objects.for_tenant(tenant).get(pk=email.contact_id).unsubscribed
    assert not ConsentEvent.objects.for_tenant(tenant).exists()


def test_a_real_token_on_another_domain_is_not_ours(scoped, tenant, signer, mailto):
    email = one_email(tenant)
    header = sending.build_message(email).extra_headers["List-Unsubscribe"]
    address = header.split("<mailto:")[1].split("?")[0].replace("unsub.acme.example", "elsewhere.example")
    message = signer.sign(aws.notification(aws.received(unsubscribe_mail(address), address)))
    assert aws.post(Client(), INBOUND, message).status_code == 200
    assert not Contact.objects.for_tenant(tenant).get(pk=email.contact_id).unsubscribed


def test_inbound_mail_with_a_forged_signature_is_refused(scoped, tenant, signer, mailto):
    email = one_email(tenant)
    header = sending.build_message(email).extra_headers["List-Unsubscribe"]
    address = header.split("<mailto:")[1].split("?")[0]
    other_key = aws.forger_key()
    message = signer.sign(aws.notification(aws.received(unsubscribe_mail(address), address)), key=other_key)
    assert aws.post(Client(), INBOUND, message).status_code == 400
    assert not Contact.objects.for_tenant(tenant).get(pk=email.contact_id).unsubscribed


def test_a_bounce_sent_to_the_inbound_webhook_is_a_400_not_a_500(sent, signer, tenant):
    message = signer.sign(aws.notification(aws.bounce(sent.provider_message_id, sent.contact.email)))
    reply = aws.post(Client(), INBOUND, message)
    assert reply.status_code == 400 and "inbound" in reply.content.decode()
    assert not reports(tenant).exists()


def test_the_mailto_address_is_a_valid_address_and_survives_a_case_change(scoped, tenant, signer, mailto):
    """RFC 5321 allows 64 characters before the @, and mail systems may change the case of an address: the
    mailto's local part fits, and a server that upper-cased it still unsubscribes the right contact."""
    email = one_email(tenant)
    header = sending.build_message(email).extra_headers["List-Unsubscribe"]
    address = header.split("<mailto:")[1].split("?")[0]
    local = address.rpartition("@")[0]
    assert len(local) <= 64, local
    shouted = address.upper()
    message = signer.sign(aws.notification(aws.received(unsubscribe_mail(shouted), shouted)))
    assert aws.post(Client(), INBOUND, message).status_code == 200
    assert Contact.objects.for_tenant(tenant).get(pk=email.contact_id).unsubscribed
