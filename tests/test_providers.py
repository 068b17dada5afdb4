"""Providers: a tenant on Amazon SES sends through django-anymail and boto3 to the project's emulator over HTTP
(SES v2 SendEmail, raw), a tenant on SMTP through a real SMTP server, whatever the platform's backend; the
provider's message id is kept; the sending domain names Message-ID and List-Id and bounds the sender address;
List-Unsubscribe offers a mailto only when an inbound path exists."""

import pytest
from django.core.exceptions import ValidationError

from campaigns import sending
from campaigns.models import EmailEvent, EmailStatus, EventKind, GeneratedEmail
from campaigns.providers import SES_BACKEND
from campaigns.unsubscribe import contact_of_mailto_token, token_from_address
from tests.test_sending import one_email


@pytest.fixture
def ses(aws_settings, settings):
    """SES aimed at the emulator (AWS_ENDPOINT_URLS["sesv2"]); the platform's own backend stays locmem."""
    settings.AWS_ENDPOINT_URLS = {**settings.AWS_ENDPOINT_URLS, "sesv2": aws_settings.AWS_ENDPOINT_URLS["s3"]}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return aws_settings


def ses_tenant(tenant, **fields):
    for name, value in {"email_provider": "ses", **fields}.items():
        setattr(tenant, name, value)
    tenant.save()
    return tenant


def test_a_tenant_on_ses_sends_through_boto3_to_the_emulator(scoped, tenant, ses, emulator):
    from django.core import mail

    ses_tenant(tenant, reply_to_email="replies@acme.example")
    email = one_email(tenant, first_name="Zoë", last_name="Åström")
    assert sending.email_send(email=email) == EmailStatus.SENT
    assert mail.outbox == []  # not the platform's backend
    (sent,) = emulator.ses.messages()
    assert [r.operation for r in emulator.requests] == ["SendEmail"]
    assert sent.destinations == ["person1@example.com"] and sent.region == "us-east-1"
    message = sent.message
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT and email.sent_at is not None
    assert email.provider_message_id == sent.message_id and email.provider_message_id.endswith("-000000")
    assert message["Message-ID"] == email.message_id
    assert message["List-Id"] == "Acme Video <acme.acme.example>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].strip().startswith("<http://localhost:8000/u/")
    assert message["Reply-To"].addresses[0].addr_spec == "replies@acme.example"
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Zoë Åström", "person1@example.com")
    assert message["From"].addresses[0].addr_spec == "hello@acme.example"
    assert message["Subject"] == "Picks for Zoë"
    kinds = [part.get_content_type() for part in message.walk() if not part.is_multipart()]
    assert kinds == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello there." in text and "Hello there." in html and "1 Acme Road" in text
    assert EmailEvent.objects.for_tenant(tenant).filter(email=email, kind=EventKind.SENT).count() == 1


def test_ses_is_also_the_platforms_choice_for_tenants_that_name_none(scoped, tenant, ses, emulator):
    ses.EMAIL_BACKEND = SES_BACKEND
    email = one_email(tenant)
    assert sending.email_send(email=email) == EmailStatus.SENT
    (sent,) = emulator.ses.messages()
    email.refresh_from_db()
    assert email.provider_message_id == sent.message_id


def test_the_emulator_serves_the_messages_it_took_over_http(scoped, tenant, ses, emulator):
    import base64
    import json
    import urllib.request

    ses_tenant(tenant)
    sending.email_send(email=one_email(tenant))
    with urllib.request.urlopen(f"{emulator.url}/_emulator/ses/messages") as reply:
        (message,) = json.load(reply)["messages"]
    assert b"Picks for Pat" in base64.b64decode(message["Raw"])
    assert message["Destinations"] == ["person1@example.com"]


def test_a_tenant_on_smtp_sends_through_smtp_whatever_the_platform_uses(scoped, tenant, ses, emulator, smtp_server):
    ses.EMAIL_BACKEND = SES_BACKEND
    tenant.email_provider = "smtp"
    tenant.save()
    email = one_email(tenant)
    assert sending.email_send(email=email) == EmailStatus.SENT
    assert emulator.ses.messages() == [] and len(smtp_server.received) == 1
    email.refresh_from_db()
    assert email.provider_message_id == ""


@pytest.mark.parametrize("fault, status", [("throttle", EmailStatus.APPROVED), ("internal", EmailStatus.APPROVED)])
def test_ses_answering_with_an_error_took_nothing_and_the_email_waits_for_a_retry(
    scoped, tenant, ses, emulator, fault, status
):
    ses_tenant(tenant)
    emulator.configure("SendEmail", fail_next=1, fail_with=fault)
    email = one_email(tenant)
    with pytest.raises(sending.SendDeferred):
        sending.email_send(email=email)
    email.refresh_from_db()
    assert email.status == status and "Amazon SES" in email.send_error
    assert len(emulator.requests.filter(operation="SendEmail")) == 1  # one attempt: never sent twice by botocore
    assert sending.email_send(email=email) == EmailStatus.SENT  # the retry
    assert len(emulator.ses.messages()) == 1


def test_ses_out_of_reach_is_a_connection_failure_and_nothing_was_sent(scoped, tenant, ses):
    from tests.fixtures_smtp import free_port

    ses.AWS_ENDPOINT_URLS = {**ses.AWS_ENDPOINT_URLS, "sesv2": f"http://127.0.0.1:{free_port()}"}
    ses_tenant(tenant)
    email = one_email(tenant)
    with pytest.raises(sending.SendDeferred) as raised:
        sending.email_send(email=email)
    assert raised.value.connecting
    email.refresh_from_db()
    assert email.status == EmailStatus.APPROVED and email.send_error.startswith(sending.CONNECTING)


def test_message_id_and_list_id_use_the_sending_domain(scoped, tenant, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    tenant.sending_domain = "mail.acme.example"
    tenant.sender_email = "hello@news.mail.acme.example"
    tenant.save()
    message = sending.build_message(one_email(tenant))
    assert message.extra_headers["Message-ID"].endswith("@mail.acme.example>")
    assert message.extra_headers["List-Id"] == "Acme Video <acme.mail.acme.example>"
    tenant.sending_domain = ""
    tenant.save()
    message = sending.build_message(GeneratedEmail.dangerously_unscoped.select_related("contact", "tenant").get())
    assert message.extra_headers["Message-ID"].endswith("@news.mail.acme.example>")
    assert message.extra_headers["List-Id"] == "Acme Video <acme.news.mail.acme.example>"


@pytest.mark.parametrize(
    "domain, sender, problem",
    [
        ("acme.example", "hello@acme.example", ""),
        ("Acme.Example.", "hello@news.acme.example", ""),  # a subdomain is inside
        ("acme.example", "hello@evilacme.example", "is not in the sending domain acme.example"),
        ("acme.example", "hello@acme.example.evil.test", "is not in the sending domain acme.example"),
        ("mail.acme.example", "hello@acme.example", "is not in the sending domain mail.acme.example"),
        ("acme.example", "", "set a sender address in it"),
    ],
)
def test_the_tenant_refuses_a_sender_outside_its_sending_domain(tenant, domain, sender, problem):
    tenant.sending_domain, tenant.sender_email = domain, sender
    if not problem:
        tenant.clean()
        assert tenant.sending_domain == domain.lower().rstrip(".")
        return
    with pytest.raises(ValidationError) as raised:
        tenant.clean()
    assert problem in " ".join(raised.value.message_dict["sender_email"])


@pytest.mark.parametrize("domain", ["not a domain", "acme", "-acme.example", "acme..example", "a" * 64 + ".example"])
def test_a_sending_domain_must_be_a_domain_name(tenant, domain):
    tenant.sending_domain, tenant.sender_email = domain, "hello@acme.example"
    with pytest.raises(ValidationError) as raised:
        tenant.clean()
    assert "is not a domain name" in raised.value.message_dict["sending_domain"][0]


def test_the_tenant_page_says_why_a_sender_outside_the_domain_is_refused(tenant):
    from django.test import Client
    from django.urls import reverse

    from tenants.models import Role, Tenant
    from tenants.services import membership_add
    from tests.test_tenant_admin import change_post

    client = Client()
    client.force_login(membership_add(tenant=tenant, username="olga", role=Role.OWNER).user)
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    delivery = {"send_rate_per_second": "0", "timezone": "UTC", "frequency_cap": "0", "frequency_period_days": "7",
                "frequency_cap_action": "wait"}  # fmt: skip
    form = change_post(tenant, sending_domain="mail.acme.example", sender_email="hello@acme.example", **delivery)
    page = client.post(url, form)
    assert page.status_code == 200
    assert "hello@acme.example is not in the sending domain mail.acme.example" in page.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).sending_domain == ""
    form["sender_email"] = "hello@news.mail.acme.example"
    assert client.post(url, form).status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).sending_domain == "mail.acme.example"


def test_list_unsubscribe_offers_a_mailto_only_with_an_inbound_path(scoped, tenant, settings):
    email = one_email(tenant)
    settings.UNSUBSCRIBE_MAILTO_DOMAIN = ""
    header = sending.build_message(email).extra_headers["List-Unsubscribe"]
    assert header.startswith("<http://localhost:8000/u/") and header.endswith("/>") and "mailto" not in header
    settings.UNSUBSCRIBE_MAILTO_DOMAIN = "unsub.acme.example"
    header = sending.build_message(email).extra_headers["List-Unsubscribe"]
    link, mailto = header.split(", ")
    token = link.removeprefix("<http://localhost:8000/u/").removesuffix("/>")
    assert mailto.startswith("<mailto:unsubscribe+") and mailto.endswith("@unsub.acme.example?subject=unsubscribe>")
    address = mailto.removeprefix("<mailto:").removesuffix("?subject=unsubscribe>")
    assert token and ":" not in address  # the link's token stays in the link
    assert contact_of_mailto_token(token_from_address(address)).pk == email.contact_id
    assert sending.build_message(email, test_to="rev@acme.example").extra_headers.get("List-Unsubscribe") is None


def test_a_tenant_with_its_own_account_sends_from_it_in_its_region(scoped, tenant, ses, emulator):
    role = "arn:aws:iam::222233334444:role/MailsaasSend"
    emulator.sts.add_role(role, "acme-external")
    ses_tenant(tenant, aws_region="eu-west-1", aws_role_arn=role, aws_external_id="acme-external")
    email = one_email(tenant)
    assert sending.email_send(email=email) == EmailStatus.SENT
    (sent,) = emulator.ses.messages()
    assert (sent.region, sent.account) == ("eu-west-1", "222233334444")
    (call,) = emulator.requests.filter(operation="SendEmail")
    assert call.access_key.startswith("ASIA") and call.region == "eu-west-1"  # the role's session, not ours
