"""Sending approved emails: each exactly once, through Django's mail backend."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template.loader import render_to_string
from django.utils import timezone

from campaigns.models import CampaignRun, EmailStatus, GeneratedEmail


def email_send(*, email: GeneratedEmail) -> str:
    """Send an approved email exactly once. Returns the email's new status."""
    claimed = GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk, status=EmailStatus.APPROVED)
    if not claimed.update(status=EmailStatus.SENDING, send_claimed_at=timezone.now()):
        email.refresh_from_db()
        return email.status
    email.refresh_from_db()
    contact = email.contact
    if contact.unsubscribed:
        _set_status(email, status=EmailStatus.SUPPRESSED)
        return EmailStatus.SUPPRESSED
    message = build_message(email)
    try:
        message.send()
    except Exception as exc:  # the backend failed before handing over: nothing was sent, so it may be retried
        _set_status(email, status=EmailStatus.APPROVED, send_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _set_status(email, status=EmailStatus.SENT, sent_at=timezone.now(), message_id=message.extra_headers["Message-ID"])
    return EmailStatus.SENT


def _set_status(email: GeneratedEmail, **changes) -> None:
    GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk).update(**changes)
    for name, value in changes.items():
        setattr(email, name, value)


def build_message(email: GeneratedEmail) -> EmailMultiAlternatives:
    tenant, contact = email.tenant, email.contact
    context = {"subject": email.subject, "body": email.body, "brand": tenant.brand,
               "postal_address": tenant.postal_address, "unsubscribe_url": email.unsubscribe_url}  # fmt: skip
    domain = (tenant.sender_email or settings.DEFAULT_FROM_EMAIL).rsplit("@", 1)[-1]
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=render_to_string("emails/campaign_email.txt", context),
        from_email=tenant.from_email,
        to=[f"{contact.full_name} <{contact.email}>" if contact.full_name else contact.email],
        headers={
            "Message-ID": make_msgid(domain=domain),
            "List-Unsubscribe": f"<{email.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(render_to_string("emails/campaign_email.html", context), "text/html")
    return message


def run_send_approved(*, run: CampaignRun) -> dict[str, int]:
    outcome: dict[str, int] = {}
    ids = (
        GeneratedEmail.objects.for_tenant(run.tenant)
        .filter(run=run, status=EmailStatus.APPROVED)
        .values_list("pk", flat=True)
    )
    for email in (
        GeneratedEmail.objects.for_tenant(run.tenant).filter(pk__in=list(ids)).select_related("contact", "tenant")
    ):
        status = email_send(email=email)
        outcome[status] = outcome.get(status, 0) + 1
    return outcome
