"""What providers say after they took a message, recorded one way for every path (SES's notifications through
SNS, and the plain report endpoint for other providers): the DeliveryReport (once per provider event), the line in
the email's audit log, and what follows: a hard bounce or complaint suppresses the address at once, soft bounces
are counted and SOFT_BOUNCE_LIMIT of them since the address's last delivery suppress it as a hard bounce, and
every complaint asks the complaint guard (campaigns.guard) whether the tenant's sending must pause. Opens and
clicks are recorded the same way (once per event, a line in the audit log) and change nothing else: the subject
test (campaigns.subject_test) counts them."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import DeliveryReport, EmailEvent, EventKind, GeneratedEmail, ReportKind
from datasets.models import SuppressionReason
from datasets.suppression import address_normal, address_suppress

log = logging.getLogger(__name__)

EVENTS = {ReportKind.DELIVERED: EventKind.DELIVERED, ReportKind.SOFT_BOUNCE: EventKind.SOFT_BOUNCED,
          ReportKind.HARD_BOUNCE: EventKind.BOUNCED, ReportKind.COMPLAINT: EventKind.COMPLAINED,
          ReportKind.OPENED: EventKind.OPENED, ReportKind.CLICKED: EventKind.CLICKED}  # fmt: skip
SUPPRESSING = {ReportKind.HARD_BOUNCE: SuppressionReason.HARD_BOUNCE, ReportKind.COMPLAINT: SuppressionReason.COMPLAINT}


@dataclass(frozen=True)
class Recorded:
    report: DeliveryReport
    created: bool  # False: the same provider event was recorded before, and nothing was done again
    suppressed: bool = False  # this report put the address on the suppression list
    paused: str = ""  # this report paused the tenant's sending: why


def email_of_report(*, tenant_id: int | None, message_id: str = "", provider_message_id: str = ""):
    """The email a report is about: by the provider's id, else by our Message-ID (with or without its angle
    brackets, and the provider's id given as a message id too), within the tenant when it is known. For a
    provider's notification (no tenant yet) the email found names the tenant."""
    emails = GeneratedEmail.objects.for_tenant(tenant_id) if tenant_id else GeneratedEmail.dangerously_unscoped
    wanted = Q()
    if provider_message_id:
        wanted |= Q(provider_message_id=provider_message_id[:200])
    if message_id:
        bare = message_id.strip().strip("<>")[:298]
        wanted |= Q(message_id__in=[bare, f"<{bare}>"]) | Q(provider_message_id=bare[:200])
    if not wanted:
        return None
    found = list(emails.filter(wanted).exclude(message_id="", provider_message_id="").order_by("-pk")[:2])
    return found[0] if len(found) == 1 else None  # two emails sharing an id name neither


def report_record(*, provider: str, kind: str, address: str, tenant_id: int | None = None, event_id: str = "",
                  message_id: str = "", provider_message_id: str = "", at: datetime | None = None,
                  detail: dict | None = None, email: GeneratedEmail | None = None) -> Recorded | None:  # fmt: skip
    """Record one report. Without a tenant (a provider's notification), the email it names decides the tenant,
    and a report about no email of ours is logged and dropped (None). The same (tenant, provider, event_id) twice
    is one row: the second call changes nothing and says so (created=False). Raises ValueError for an address
    that is not one."""
    if kind not in EVENTS:
        raise ValueError(f"kind must be one of {', '.join(EVENTS)}, not {str(kind)[:40]!r}")
    address = address_normal(address)
    if email is None:
        email = email_of_report(tenant_id=tenant_id, message_id=message_id, provider_message_id=provider_message_id)
    if tenant_id is None:
        if email is None:
            log.warning("%s %s report for %s names no email of ours (message id %r): not recorded", provider, kind,
                        address, provider_message_id or message_id)  # fmt: skip
            return None
        tenant_id = email.tenant_id
    detail = dict(detail or {})
    diagnostic = str(detail.get("diagnostic") or "")[:1000]
    reports = DeliveryReport.objects.for_tenant(tenant_id)
    with transaction.atomic():
        try:
            with transaction.atomic():
                report = reports.create(
                    tenant_id=tenant_id, email=email, address=address, kind=kind, provider=provider[:40],
                    event_id=event_id[:200], message_id=(message_id or provider_message_id)[:300], detail=detail,
                    at=at or timezone.now(),
                )  # fmt: skip
        except IntegrityError:
            same = reports.filter(provider=provider[:40], event_id=event_id[:200]).first() if event_id else None
            if same is None:
                raise
            return Recorded(same, created=False)
        if email is not None:
            audit = {"report": report.pk, "address": address, "diagnostic": diagnostic}
            if kind == ReportKind.CLICKED and detail.get("link"):
                audit["link"] = str(detail["link"])[:1000]
            EmailEvent.record(email, EVENTS[kind], by=provider[:150], status=email.status, detail=audit)
        suppressed = _suppress(report, diagnostic)
    paused = ""
    if kind == ReportKind.COMPLAINT:
        from campaigns.guard import complaint_guard_check

        paused = complaint_guard_check(tenant_id=tenant_id)
    return Recorded(report, created=True, suppressed=suppressed, paused=paused)


def _suppress(report: DeliveryReport, diagnostic: str) -> bool:
    tenant_id, address, provider = report.tenant_id, report.address, report.provider
    if report.kind in SUPPRESSING:
        return address_suppress(tenant_id=tenant_id, address=address, reason=SUPPRESSING[report.kind],
                                source=provider, by=provider, note=diagnostic)  # fmt: skip
    if report.kind != ReportKind.SOFT_BOUNCE:
        return False
    _lock_address(tenant_id, address)  # two soft bounces at once must not each count the other out
    reports = DeliveryReport.objects.for_tenant(tenant_id).filter(address=address)
    delivered = reports.filter(kind=ReportKind.DELIVERED).order_by("-at").values_list("at", flat=True).first()
    soft = reports.filter(kind=ReportKind.SOFT_BOUNCE)
    if delivered is not None:
        soft = soft.filter(at__gt=delivered)
    count, limit = soft.count(), settings.SOFT_BOUNCE_LIMIT
    if count < limit:
        return False
    since = "since its last delivery" if delivered is not None else "and no delivery"
    note = f"{count} soft bounces {since} (the limit is {limit}): suppressed as a hard bounce. Last: {diagnostic}"
    return address_suppress(tenant_id=tenant_id, address=address, reason=SuppressionReason.HARD_BOUNCE,
                            source=provider, by=provider, note=note[:2000])  # fmt: skip


def _lock_address(tenant_id: int, address: str) -> None:
    """A transaction-long lock on the tenant's address (PostgreSQL; SQLite serializes writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"report:{tenant_id}:{address}"])
