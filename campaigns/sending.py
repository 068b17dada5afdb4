"""Sending approved emails, each at most once, through Django's mail backend: what a failure means for the email
(refused for good, worth a retry, or cut off once the server may have the message), and claims left behind by a
worker that died mid-send."""

import logging
import smtplib
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from email.header import Header
from email.headerregistry import Address

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid, sanitize_address
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Case, Count, F, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.utils import timezone

from campaigns import pacing
from campaigns.guard import sending_paused
from campaigns.models import CampaignRun, EmailEvent, EmailStatus, EventKind, GeneratedEmail
from campaigns.providers import list_unsubscribe, mail_connection, provider_failure, provider_message_id
from datasets.models import Contact
from datasets.suppression import suppression_of
from routing.ratelimit import Limits, RateLimitTimeout, send_limiter
from tenants.models import CapAction, Tenant

log = logging.getLogger(__name__)

WAITING = "waiting"  # a send's outcome: left approved, asked to be sent at send_after (an EmailEvent SEND_WAITING)
# What a waiting email's send_error starts with (the run's counts tell waiting from queued by it).
PAUSED = "sending is paused"
OUTSIDE_WINDOW = "outside the campaign's send window"
OVER_CAP = "over the frequency cap"
WAIT_REASONS = (PAUSED, OUTSIDE_WINDOW, OVER_CAP)
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
    """Send an approved email at most once. Returns the email's new status, or WAITING when it stays approved for
    later (the tenant's sending is paused, the contact is outside the campaign's send window, or over the tenant's
    frequency cap with "wait"); raises SendDeferred when a failure that may pass left it approved. An email another
    task is sending is left alone while its claim's lease holds. Just before the handover it takes a token from
    the tenant's sending rate."""
    paused = sending_paused(email.tenant)
    if paused:
        return _wait(email, f"{PAUSED}: {paused}", until=timezone.now(), paused=True)
    opening, window = window_opening_of(email)
    if opening is not None:
        return _wait(email, f"{OUTSIDE_WINDOW} ({window})", until=opening)
    claimed_at, over_cap = _claim_within_cap(email)
    if over_cap is not None:
        return _over_cap(email, *over_cap)
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
    try:
        _send_token(email.tenant)
    except RateLimitTimeout as exc:  # nothing handed over: approved again, for the task's retry
        _finish(email, claimed_at, EmailStatus.APPROVED, send_error=str(exc), send_after=_retry_lease())
        raise SendDeferred(str(exc)) from exc
    status, reason = _deliver(message)
    if status == EmailStatus.SENT:
        return _finish(email, claimed_at, status, sent_at=timezone.now(), send_error="",
                       provider_message_id=provider_message_id(message))  # fmt: skip
    if status == EmailStatus.APPROVED:  # still asked: the task retries it; the beat only if that retry was lost
        _finish(email, claimed_at, status, send_error=reason[:2000], send_after=_retry_lease())
    else:
        _finish(email, claimed_at, status, send_error=reason[:2000])
    if status == EmailStatus.APPROVED:
        raise SendDeferred(reason, connecting=reason.startswith(CONNECTING))
    return status


def _retry_lease() -> datetime:
    """send_after for an email a passing failure left approved: past any retry's backoff (at most 600 s), so the
    beat's sweep queues it again only if the task's own retry was lost."""
    return timezone.now() + timedelta(seconds=settings.EMAIL_SEND_QUEUED_SECONDS + 600)


def email_send_give_up(*, email: GeneratedEmail) -> None:
    """After a task's last try an email a passing failure left approved is no longer asked to be sent (send_error
    says why): a person sends it again, or the next send of its run."""
    GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk, status=EmailStatus.APPROVED).update(
        send_after=None
    )


def email_claim(*, email: GeneratedEmail) -> datetime | None:
    """Take an approved email for sending (a conditional UPDATE: of two tasks, one wins). The claim's time starts
    its lease and is the token the sender's later writes carry; None if the email was not approved."""
    now = timezone.now()
    approved = GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk, status=EmailStatus.APPROVED)
    return now if approved.update(status=EmailStatus.SENDING, send_claimed_at=now, send_after=None) else None


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
        headers.update({"List-Unsubscribe": list_unsubscribe(context["unsubscribe_url"], tenant_id=email.tenant_id,
                                                             contact_id=email.contact_id),
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


def emails_send_request(*, emails: QuerySet) -> int:
    """Record that these emails are asked to be sent: an approved email without send_after gets now (one that waits
    keeps its later time). "Asked to be sent" is exactly "approved with send_after set": the beat's sweep
    (emails_send_due) enqueues those whose send_after has passed, so a request outlives a lost task. Returns how
    many approved emails are asked."""
    approved = emails.filter(status=EmailStatus.APPROVED)
    approved.filter(send_after__isnull=True).update(send_after=timezone.now())
    return approved.count()


def run_send_request(*, run: CampaignRun) -> int:
    """Ask for every approved email of the run to be sent (the API's and the admin's request, before the fan-out
    task runs). Returns how many are asked."""
    return emails_send_request(emails=GeneratedEmail.objects.for_tenant(run.tenant).filter(run=run))


def run_send_approved(*, run: CampaignRun, enqueue: Callable[[int, int], object]) -> int:
    """The run's send: a fan-out, not a loop. First, this run's claims past their lease become unknown; then every
    approved email is asked to be sent and each one due is handed to `enqueue(email_id, tenant_id)` (the Celery
    task email_send), a chunk at a time. Returns how many were queued."""
    emails = GeneratedEmail.objects.for_tenant(run.tenant).filter(run=run)
    email_claims_expire(emails=emails)
    emails_send_request(emails=emails)
    return emails_enqueue_due(tenant=run.tenant, emails=emails, enqueue=enqueue)


def emails_enqueue_due(*, tenant: Tenant, emails: QuerySet, enqueue: Callable[[int, int], object]) -> int:
    """Enqueue the approved emails among `emails` whose send_after has passed, EMAIL_SEND_CHUNK ids at a time.
    Each chunk's rows are locked (skipping rows another fan-out holds) and their send_after moved past the time
    their tasks should have run (EMAIL_SEND_QUEUED_SECONDS plus their place in line at the tenant's rate), so two
    fan-outs, or a fan-out and the beat, queue an email once; if its task is lost, the beat queues it again
    then. The tasks are enqueued after the chunk's commit. Returns how many were queued."""
    now, rate = timezone.now(), send_rate(tenant)
    due = emails.filter(status=EmailStatus.APPROVED, send_after__lte=now)
    cleared = Case(When(_waiting(), then=Value("")), default=F("send_error"), output_field=TextField())  # queued
    queued, after = 0, 0
    while True:
        with transaction.atomic():
            chunk = due.filter(pk__gt=after).order_by("pk").select_for_update(skip_locked=True)
            chunk = list(chunk.values_list("pk", flat=True)[: settings.EMAIL_SEND_CHUNK])
            if not chunk:
                return queued
            in_line = (queued + len(chunk)) / rate if rate else 0
            until = now + timedelta(seconds=settings.EMAIL_SEND_QUEUED_SECONDS + in_line)
            GeneratedEmail.objects.for_tenant(tenant).filter(pk__in=chunk).update(send_after=until, send_error=cleared)
        for pk in chunk:
            enqueue(pk, tenant.pk)
        queued, after = queued + len(chunk), chunk[-1]


def emails_send_due(*, enqueue: Callable[[int, int], object]) -> int:
    """Beat's sweep, every minute: enqueue every tenant's emails asked to be sent whose send_after has passed (a
    send window opened, the cap let a contact in, a queued task was lost), except a paused tenant's (they go once
    it is resumed). One query finds the tenants; each tenant's emails are then read in its own scope."""
    now = timezone.now()
    due = GeneratedEmail.dangerously_unscoped.filter(status=EmailStatus.APPROVED, send_after__lte=now)
    tenant_ids = set(due.filter(tenant__sending_paused_at__isnull=True).values_list("tenant_id", flat=True))
    queued = 0
    for tenant in Tenant.objects.filter(pk__in=tenant_ids, sending_paused_at__isnull=True).order_by("pk"):
        emails = GeneratedEmail.objects.for_tenant(tenant)
        queued += emails_enqueue_due(tenant=tenant, emails=emails, enqueue=enqueue)
    return queued


def send_rate(tenant: Tenant) -> int:
    """Emails per second the tenant's sends may hand over (its own rate, else EMAIL_SEND_RATE_PER_SECOND); 0 is
    unlimited."""
    return tenant.send_rate_per_second or settings.EMAIL_SEND_RATE_PER_SECOND


def _send_token(tenant: Tenant) -> None:
    """Wait for room in the tenant's rate (one window shared by every worker process through Redis, or the
    process's own without it); raises RateLimitTimeout after EMAIL_SEND_RATE_TIMEOUT seconds."""
    rate = send_rate(tenant)
    if rate:
        send_limiter().acquire(
            scope=f"tenant:{tenant.pk}", limits=Limits(rpm=rate), tokens=1, timeout=settings.EMAIL_SEND_RATE_TIMEOUT
        )


def window_opening_of(email: GeneratedEmail) -> tuple[datetime | None, str]:
    """(None, '') inside the campaign's send window in the contact's time, else (its next opening, the window)."""
    campaign = email.run.campaign
    start, end = campaign.send_window_start, campaign.send_window_end
    if start is None or end is None:
        return None, ""
    zone = pacing.contact_zone(email.contact, email.tenant)
    opening = pacing.window_opening(timezone.now(), start, end, zone)
    return opening, (pacing.window_text(start, end, zone) if opening else "")


def _claim_within_cap(email: GeneratedEmail) -> tuple[datetime | None, tuple[int, datetime] | None]:
    """The claim, under the tenant's frequency cap: (the claim's time or None, None), or (None, (cap, when the
    contact is under it again)). The address's sends are counted and the email claimed in one transaction under a
    lock on the address, so of two workers sending to one person, the second counts the first's claim."""
    tenant = email.tenant
    cap = tenant.frequency_cap
    if not cap:
        return email_claim(email=email), None
    address = email.contact.email.strip().lower()
    period = timedelta(days=tenant.frequency_period_days)
    with transaction.atomic():
        _lock_address(tenant.pk, address)
        since = timezone.now() - period
        contacts = Contact.objects.for_tenant(tenant).filter(email__iexact=address).values("pk")
        counted = (
            GeneratedEmail.objects.for_tenant(tenant)
            .filter(contact__in=contacts)
            .filter(
                Q(status=EmailStatus.SENT, sent_at__gt=since) | Q(status=EmailStatus.SENDING, send_claimed_at__gt=since)
            )
            .exclude(pk=email.pk)
            .annotate(at=Coalesce("sent_at", "send_claimed_at"))
        )
        times = sorted(counted.values_list("at", flat=True))
        if len(times) >= cap:  # under the cap again once enough of these have left the period
            return None, (cap, times[len(times) - cap] + period)
        return email_claim(email=email), None


def _lock_address(tenant_id: int, address: str) -> None:
    """A transaction lock on (tenant, address) in PostgreSQL; SQLite runs one writer at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [tenant_id, address])


def _over_cap(email: GeneratedEmail, cap: int, until: datetime) -> str:
    tenant = email.tenant
    said = f"{OVER_CAP}: {cap} email(s) per {tenant.frequency_period_days} day(s) to {email.contact.email}"
    if tenant.frequency_cap_action == CapAction.SKIP:
        approved = GeneratedEmail.objects.for_tenant(tenant).filter(pk=email.pk, status=EmailStatus.APPROVED)
        with transaction.atomic():
            if approved.update(status=EmailStatus.SKIPPED, send_error=said, send_after=None):
                EmailEvent.record(email, EventKind.SKIPPED, status=EmailStatus.SKIPPED, detail={"reason": said})
                email.status, email.send_error, email.send_after = EmailStatus.SKIPPED, said, None
                return EmailStatus.SKIPPED
        return _claim_taken(email)
    return _wait(email, said, until=until)


def _wait(email: GeneratedEmail, reason: str, *, until: datetime, paused: bool = False) -> str:
    """Leave an approved email for later: asked to be sent at `until` (for a pause: now, and the beat's sweep
    leaves a paused tenant's emails until it is resumed), with why, and a SEND_WAITING event saying why and until
    when. An email no longer approved is left as it is."""
    approved = GeneratedEmail.objects.for_tenant(email.tenant).filter(pk=email.pk, status=EmailStatus.APPROVED)
    detail = {"reason": reason} if paused else {"reason": reason, "until": until.isoformat()}
    with transaction.atomic():
        if approved.update(send_after=until, send_error=reason):
            EmailEvent.record(email, EventKind.SEND_WAITING, status=EmailStatus.APPROVED, detail=detail)
            email.send_after, email.send_error = until, reason
            return WAITING
    return _claim_taken(email)


def _waiting() -> Q:
    condition = Q()
    for reason in WAIT_REASONS:
        condition |= Q(send_error__startswith=reason)
    return condition


def run_send_counts(*, run: CampaignRun) -> dict[str, int]:
    """The run's emails counted by status."""
    rows = GeneratedEmail.objects.for_tenant(run.tenant).filter(run=run).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows.order_by("status")}


# A run's emails by sending state (the run page and the API): approved but never asked, queued (asked, due or in a
# task's hands), waiting (paused, outside its window, over the cap: until send_after), then the outcomes.
SEND_STATES = ("approved", "queued", "waiting", "sending", "sent", "failed", "unknown", "suppressed", "skipped")


def run_send_states(*, run: CampaignRun) -> dict[str, int]:
    """The run's emails counted by sending state, in one query."""
    approved = Q(status=EmailStatus.APPROVED)
    conditions = {
        "approved": approved & Q(send_after__isnull=True),
        "queued": approved & Q(send_after__isnull=False) & ~_waiting(),
        "waiting": approved & Q(send_after__isnull=False) & _waiting(),
        "sending": Q(status=EmailStatus.SENDING),
        "sent": Q(status=EmailStatus.SENT),
        "failed": Q(status=EmailStatus.SEND_FAILED),
        "unknown": Q(status=EmailStatus.SEND_UNKNOWN),
        "suppressed": Q(status=EmailStatus.SUPPRESSED),
        "skipped": Q(status=EmailStatus.SKIPPED),
    }
    emails = GeneratedEmail.objects.for_tenant(run.tenant).filter(run=run)
    return emails.aggregate(**{name: Count("pk", filter=condition) for name, condition in conditions.items()})


def send_states_text(states: dict[str, int]) -> str:
    return " · ".join(f"{name} {states[name]:,}" for name in SEND_STATES if states.get(name)) or "nothing to send"
