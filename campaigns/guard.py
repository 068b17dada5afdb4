"""The complaint guard: when complaints reach COMPLAINT_GUARD_RATE of a tenant's last COMPLAINT_GUARD_WINDOW sent
emails, its sending pauses (Tenant.sending_paused_at and _reason, saying the figures) and its owners are told, by
email and on the admin's dashboard, until an owner resumes it. Only sending pauses: generation and review go on.

The send path asks `sending_paused(tenant)` before each send."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Subquery
from django.utils import timezone

from campaigns.models import DeliveryReport, GeneratedEmail, ReportKind
from tenants.models import Membership, Role, Tenant

log = logging.getLogger(__name__)


def sending_paused(tenant) -> str:
    """Why the tenant's sending is paused, as stored now (not as the given instance holds it); '' when it is not."""
    tenant_id = getattr(tenant, "pk", tenant)
    row = Tenant.objects.filter(pk=tenant_id).values_list("sending_paused_at", "sending_paused_reason").first()
    if row is None or row[0] is None:
        return ""
    return row[1] or f"sending paused since {row[0]:%Y-%m-%d %H:%M} UTC"


def complaint_figures(*, tenant_id: int) -> tuple[int, int]:
    """(complained, sent): of the tenant's last COMPLAINT_GUARD_WINDOW sent emails, how many were complained of."""
    window = settings.COMPLAINT_GUARD_WINDOW
    recent = GeneratedEmail.objects.for_tenant(tenant_id).filter(sent_at__isnull=False).order_by("-sent_at", "-pk")
    recent = recent.values("pk")[:window]
    complaints = DeliveryReport.objects.for_tenant(tenant_id).filter(kind=ReportKind.COMPLAINT)
    complained = complaints.filter(email_id__in=Subquery(recent)).values("email_id").distinct().count()
    return complained, recent.count()


def complaint_guard_check(*, tenant_id: int) -> str:
    """After a complaint: pause the tenant's sending if its complaints reach the limit (and tell its owners, once).
    Returns the reason when this call paused it, else ''."""
    window, rate = settings.COMPLAINT_GUARD_WINDOW, settings.COMPLAINT_GUARD_RATE
    complained, sent = complaint_figures(tenant_id=tenant_id)
    limit = rate * window
    if complained == 0 or complained < limit - 1e-9:
        return ""
    reason = (
        f"Paused by the complaint guard: {complained} complaints among the last {sent} emails sent "
        f"({complained / max(sent, 1):.2%}), at or over the limit of {rate:.2%} of {window} ({limit:g}). "
        "Check how these addresses were collected and what was sent, then resume sending."
    )[:500]
    paused = Tenant.objects.filter(pk=tenant_id, sending_paused_at__isnull=True).update(
        sending_paused_at=timezone.now(), sending_paused_reason=reason
    )
    if not paused:  # already paused: the owners were told then
        return ""
    log.warning("tenant %s: %s", tenant_id, reason)
    _tell_owners(Tenant.objects.get(pk=tenant_id), reason)
    return reason


def _tell_owners(tenant: Tenant, reason: str) -> None:
    owners = Membership.objects.filter(tenant=tenant, role=Role.OWNER).select_related("user").order_by("pk")
    link = f"{settings.SITE_URL}/admin/"
    for membership in owners:
        address = membership.user.email
        if not address:
            continue
        try:
            send_mail(
                f"[{tenant.brand}] Sending is paused: too many complaints",
                f"Hello {membership.user.get_username()},\n\nSending for {tenant.name} is paused.\n\n{reason}\n\n"
                f"Generation and review go on; nothing is sent until an owner resumes sending in the admin "
                f'({link}, the tenant\'s page, action "Resume sending").\n',
                settings.DEFAULT_FROM_EMAIL,
                [address],
            )
        except Exception:  # the pause holds and shows on the dashboard; a mail server down must not undo it
            log.exception("telling owner %s of tenant %s about the pause failed", address, tenant.slug)


def sending_resume(*, tenant: Tenant, by: str) -> bool:
    """An owner resumes the tenant's sending; False when it was not paused. The caller records who and when."""
    resumed = Tenant.objects.filter(pk=tenant.pk, sending_paused_at__isnull=False).update(
        sending_paused_at=None, sending_paused_reason=""
    )
    if resumed:
        log.warning("tenant %s: sending resumed by %s", tenant.slug, by)
        tenant.sending_paused_at, tenant.sending_paused_reason = None, ""
    return bool(resumed)
