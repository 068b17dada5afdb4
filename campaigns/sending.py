"""Sending approved emails, each at most once, through Django's mail backend: what a failure means for the email
(refused for good, worth a retry, or cut off once the server may have the message), and claims left behind by a
worker that died mid-send."""

import logging
import smtplib
import unicodedata
from datetime import datetime, timedelta
from email.header import Header
from email.headerregistry import Address

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid, sanitize_address
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from campaigns.models import CampaignRun, EmailEvent, EmailStatus, EventKind, GeneratedEmail
from campaigns.providers import list_unsubscribe, mail_connection, provider_failure, provider_message_id
from datasets.models import Contact
from datasets.suppression import suppression_of

log = logging.getLogger(__name__)

DEFERRED = "deferred"  # in a run's outcome: left approved by a failure that may pass, for the task's retry
UNKNOWN = "we cannot know whether the SMTP server delivered it"
CONNECTING = "connecting to the mail server failed"


class SendDeferred(ConnectionError):
    """A failure that may pass, before the server could have the message (a refused connection, a timeout,
    SMTP 4xx): the email is approved again for a retry. `connecting`: the server could not be reached at all."""

    def __init__(self, reason: str, *, connecting: bool = False):
        super().__init__(reason)
        self.connecting = connecting


class InvalidMessage(ValueError):
    """The email cannot be sent as it is (an invalid address, a header that would not be one line)."""


def email_send(*, email: GeneratedEmail) -> str:
    """Send an approved email at most once. Returns the email's new status; raises SendDeferred when a failure that
    may pass left it approved. An email another task is sending is left alone while its claim's lease holds."""
    claimed_at = email_claim(email=email)
    if claimed_at is None:
        return _claim_taken(email)
    email.refresh_from_db()  # as it is now, and the contact too: an unsubscribe since it was read counts
    email.contact = contact = Contact.objects.for_tenant(email.tenant).get(pk=email.contact_id)
    if contact.unsubscribed:
        return _finish(email, claimed_at, EmailStatus.SUPPRESSED)
    listed = suppression_of(tenant_id=email.tenant_id, address=contact.email)
    if listed is not None:
        said = f"the address is on the suppression list ({listed.get_reason_display().lower()}, {listed.source})"
        return _finish(email, claimed_at, EmailStatus.SUPPRESSED, send_error=said)
    try:
        message = build_message(email)
    except InvalidMessage as exc:
        return _finish(email, claimed_at, EmailStatus.SEND_FAILED, send_error=str(exc)[:2000])
    # Stored before the handover: for an email that ends unknown, the id to look for in the server's log.
    _finish(email, claimed_at, EmailStatus.SENDING, message_id=message.extra_headers["Message-ID"])
    status, reason = _deliver(message)
    if status == EmailStatus.SENT:
        return _finish(email, claimed_at, status, sent_at=timezone.now(), send_error="",
                       provider_message_id=provider_message_id(message))  # fmt: skip
    _finish(email, claimed_at, status, send_error=reason[:2000])
    if status == EmailStatus.APPROVED:
        raise SendDeferred(reason, connecting=reason.startswith(CONNECTING))
    return status


def email_claim(*, email: GeneratedEmail) -> datetime | None:
    """Take an approved email for sending (a conditional UPDATE: of two tasks, one wins). The claim's time starts
    its lease and is the token the sender's later writes carry; None if the email was not approved."""
    now = timezone.now()
    approved = GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk, status=EmailStatus.APPROVED)
    return now if approved.update(status=EmailStatus.SENDING, send_claimed_at=now) else None


def _claim_taken(email: GeneratedEmail) -> str:
    """The status of an email this task could not claim: a claim past its lease (its worker died) becomes unknown."""
    email.refresh_from_db(fields=["status", "send_claimed_at", "send_error"])
    if email.status == EmailStatus.SENDING:
        email_claims_expire(emails=GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk))
        email.refresh_from_db(fields=["status", "send_error"])
    return email.status


def email_claims_expire(*, emails: QuerySet | None = None) -> int:
    """Claims older than EMAIL_SEND_LEASE_SECONDS (longer than any SMTP attempt) belong to a worker that died
    mid-send. Whether the server took the message cannot be known, so a person decides: never a silent resend.
    Of the given emails, or of every tenant's; returns how many became unknown."""
    if emails is None:  # the beat sweep: one UPDATE over every tenant, not one per tenant
        emails = GeneratedEmail.dangerously_unscoped.all()
    lease = settings.EMAIL_SEND_LEASE_SECONDS
    expired = emails.filter(status=EmailStatus.SENDING, send_claimed_at__lt=timezone.now() - timedelta(seconds=lease))
    reason = f"{UNKNOWN}: its send did not finish within {lease} s (the worker stopped); mark it sent or send again"
    with transaction.atomic():
        # Locked, so the rows changed are exactly the rows whose change is logged.
        owners = dict(expired.select_for_update().values_list("pk", "tenant_id"))
        changed = GeneratedEmail.dangerously_unscoped.filter(pk__in=owners).update(
            status=EmailStatus.SEND_UNKNOWN, send_error=reason
        )
        EmailEvent.record_many(
            owners, EventKind.SEND_UNKNOWN, status=EmailStatus.SEND_UNKNOWN, detail={"reason": reason}
        )
    return changed


def _finish(email: GeneratedEmail, claimed_at: datetime, status: str, **changes) -> str:
    """Write the send's outcome, unless the email moved on without this claim (a person resolved it meanwhile)."""
    changes["status"] = status
    mine = GeneratedEmail.objects.for_tenant(email.tenant).filter(
        pk=email.pk, send_claimed_at=claimed_at, status__in=(EmailStatus.SENDING, EmailStatus.SEND_UNKNOWN)
    )
    with transaction.atomic():
        if mine.update(**changes):
            detail = {"reason": changes["send_error"]} if changes.get("send_error") else {}
            if "message_id" in changes:
                detail["message_id"] = changes["message_id"]
            EmailEvent.record(email, SEND_EVENTS[status], status=status, detail=detail)
            for name, value in changes.items():
                setattr(email, name, value)
    return status


SEND_EVENTS = {EmailStatus.SENT: EventKind.SENT, EmailStatus.SEND_FAILED: EventKind.SEND_FAILED,
               EmailStatus.SEND_UNKNOWN: EventKind.SEND_UNKNOWN, EmailStatus.APPROVED: EventKind.SEND_DEFERRED,
               EmailStatus.SUPPRESSED: EventKind.SUPPRESSED, EmailStatus.SENDING: EventKind.SENDING}  # fmt: skip


def _deliver(message: EmailMultiAlternatives) -> tuple[str, str]:
    """Hand the message over; the email's new status and why. The connection is opened here, not by send(), to
    know what failed: opening it (nothing sent), the conversation, or the goodbye after the server took the
    message (delivered, whatever the goodbye says). The connection is the provider of the message's tenant
    (build_message notes it on the message)."""
    connection = mail_connection(getattr(message, "tenant", None))
    try:
        connection.open()
    except Exception as exc:  # the server is down or refuses us: nothing to do with this email, so not final
        return EmailStatus.APPROVED, f"{CONNECTING}: {_said(exc)}"
    handover = _Handover(connection)
    try:
        connection.send_messages([message])
    except Exception as exc:
        return _refusal(exc, handed_over=handover.started)
    finally:
        _close(connection)
    return EmailStatus.SENT, ""


class _Handover:
    """Notes when smtplib starts DATA: from then on the server may have the message, whatever fails next. Other
    backends (file, locmem) are counted as handed over from the start."""

    def __init__(self, connection):
        smtp = getattr(connection, "connection", None)
        self.started = not hasattr(smtp, "data")
        if not self.started:
            data = smtp.data

            def watched(msg):
                self.started = True
                return data(msg)

            smtp.data = watched


def _refusal(exc: Exception, *, handed_over: bool) -> tuple[str, str]:
    if (failure := provider_failure(exc)) is not None:  # anymail's SES backend: what botocore said
        return _provider_refusal(*failure)
    code, said = _smtp_reply(exc)
    if code is not None:  # the server answered with a refusal: it did not take the message
        return (EmailStatus.SEND_FAILED if code >= 500 else EmailStatus.APPROVED), said
    if isinstance(exc, ValueError):  # Django's address and header checks
        return EmailStatus.SEND_FAILED, f"invalid address or header: {said}"
    if handed_over:
        return EmailStatus.SEND_UNKNOWN, f"{UNKNOWN}: {said}"
    return EmailStatus.APPROVED, said


def _provider_refusal(reach: str, error) -> tuple[str, str]:
    """SES answering (throttled, refused) took nothing: a retry, or failed for good. A connection never opened
    sent nothing; one cut off after the request went may have sent it."""
    if reach == "answered":
        return (EmailStatus.SEND_FAILED if error.permanent else EmailStatus.APPROVED), str(error)
    if reach == "unreached":
        return EmailStatus.APPROVED, f"{CONNECTING}: {error}"
    if reach == "lost":
        return EmailStatus.SEND_UNKNOWN, f"{UNKNOWN}: {error}"
    return EmailStatus.SEND_FAILED, str(error)  # botocore refused the request before sending it


def _smtp_reply(exc: Exception) -> tuple[int | None, str]:
    """The SMTP reply code (400-599) of a refusal and its text, or None when the server did not answer one."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = min(exc.recipients.values())  # one recipient per message; with several, a passing one wins
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, exc.smtp_error
    else:
        return None, _said(exc)
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return (code if 400 <= code < 600 else None), f"{code} {text}"


def _close(connection) -> None:
    try:
        connection.close()
    except Exception as exc:  # after the message was taken (or refused): the goodbye changes nothing
        log.warning("closing the mail connection failed: %s", _said(exc))


def _said(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def build_message(email: GeneratedEmail, *, test_to: str = "") -> EmailMultiAlternatives:
    """The email as Django sends it. Raises InvalidMessage when it cannot be sent as it is.

    With test_to, the same email as a test for a reviewer: to that address, its subject marked, a note on top, and
    neither the contact's unsubscribe link nor the unsubscribe headers (a click on a test must not unsubscribe
    the contact)."""
    tenant, contact = email.tenant, email.contact
    context = message_context(email)
    sender = tenant.sender_email or settings.DEFAULT_FROM_EMAIL
    domain = tenant.sending_domain or sender.rsplit("@", 1)[-1]
    headers = {"Message-ID": make_msgid(domain=domain), "List-Id": list_id(tenant, domain)}
    if tenant.reply_to_email:
        headers["Reply-To"] = mailbox(tenant.sender_name or tenant.brand, tenant.reply_to_email)
    if test_to:
        context.update(test_for=contact.full_name or contact.email, unsubscribe_url="")
        headers["X-Test-Send"] = "yes"
    else:
        headers.update({"List-Unsubscribe": list_unsubscribe(context["unsubscribe_url"]),
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})  # fmt: skip
    message = EmailMultiAlternatives(
        subject=f"[Test] {one_line(email.subject)}" if test_to else one_line(email.subject),
        body=render_to_string("emails/campaign_email.txt", context),
        from_email=mailbox(tenant.sender_name or tenant.brand, sender),
        to=[mailbox("", test_to) if test_to else mailbox(contact.full_name, contact.email)],
        headers=headers,
    )
    message.attach_alternative(render_to_string("emails/campaign_email.html", context), "text/html")
    message.tenant = tenant  # whose provider _deliver hands it to
    try:  # Django's own checks, here rather than half-way through an SMTP conversation
        message.message()
        for address in message.recipients():
            sanitize_address(address, message.encoding or settings.DEFAULT_CHARSET)
    except ValueError as exc:
        raise InvalidMessage(f"invalid address or header: {exc}") from exc
    return message


class TestSendRefused(Exception):
    """The mail server did not take a test send; the message says what it answered."""


def email_test_send(*, email: GeneratedEmail, to: str, by: str) -> None:
    """Send the email as a test to a reviewer's own address. Nothing about the email changes; the audit log
    records who sent a test, and to where. Raises InvalidMessage (nothing to send, a bad address) or
    TestSendRefused."""
    if not (email.subject and email.body):
        raise InvalidMessage("this email has no text yet: nothing to send")
    status, said = _deliver(build_message(email, test_to=to))
    if status != EmailStatus.SENT:
        raise TestSendRefused(f"the mail server did not take the test: {said}")
    EmailEvent.record(email, EventKind.TEST_SENT, by=by, status=email.status, detail={"to": to})


def list_id(tenant, domain: str) -> str:
    """RFC 2919: one list per tenant, `Brand <slug.sending-domain>`; a non-ASCII brand as an RFC 2047 word, so that
    only the phrase is encoded and the id stays as it is."""
    brand = one_line(tenant.brand)
    if not brand.isascii():
        brand = Header(brand, "utf-8").encode()
    elif any(c in brand for c in '()<>[]:;@\\,."'):
        brand = '"' + brand.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{brand} <{tenant.slug}.{domain}>"


def message_context(email: GeneratedEmail) -> dict:
    tenant = email.tenant
    return {"subject": email.subject, "body": email.body, "brand": tenant.brand,
            "postal_address": tenant.postal_address, "unsubscribe_url": email.unsubscribe_url}  # fmt: skip


def message_parts(email: GeneratedEmail) -> dict:
    """The email's two parts as its recipient will get them (the review desk shows them), without sending."""
    context = message_context(email)
    return {"text": render_to_string("emails/campaign_email.txt", context),
            "html": render_to_string("emails/campaign_email.html", context)}  # fmt: skip


def mailbox(name: str, address: str) -> str:
    """`"Display Name" <address>`, quoted by the email package (the name is encoded per RFC 2047 on the wire)."""
    try:
        validate_email(address)
    except ValidationError:
        raise InvalidMessage(f"invalid address {address!r}") from None
    return str(Address(display_name=one_line(name), addr_spec=address))


def one_line(text: str) -> str:
    """A name or subject as one header line: a newline in it is data, not the start of another header."""
    return " ".join("".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text).split())


def run_send_approved(*, run: CampaignRun) -> dict[str, int]:
    """Send every approved email of the run; one email's failure is its own. Returns {status: count}, DEFERRED
    counting the emails left approved for a retry. First, this run's claims past their lease become unknown."""
    emails = GeneratedEmail.objects.for_tenant(run.tenant)
    email_claims_expire(emails=emails.filter(run=run))
    ids = list(emails.filter(run=run, status=EmailStatus.APPROVED).order_by("pk").values_list("pk", flat=True))
    outcome: dict[str, int] = {}
    for done, email in enumerate(emails.filter(pk__in=ids).select_related("contact", "tenant").order_by("pk")):
        try:
            status = email_send(email=email)
        except SendDeferred as exc:
            if exc.connecting:  # the server cannot be reached: the others would wait on it in turn
                outcome[DEFERRED] = outcome.get(DEFERRED, 0) + len(ids) - done
                break
            status = DEFERRED
        outcome[status] = outcome.get(status, 0) + 1
    return outcome


def run_send_counts(*, run: CampaignRun) -> dict[str, int]:
    """The run's emails counted by status."""
    rows = GeneratedEmail.objects.for_tenant(run.tenant).filter(run=run).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows.order_by("status")}
