"""Consent changes, each one recorded (when, how, by whom): the only code that writes a contact's `unsubscribed`.

An unsubscribe may come from anywhere (an import, the API, the link in an email, the admin); a re-subscribe
only with the consent it rests on, written down."""

from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone

from datasets.models import ConsentEvent, Contact, SuppressionReason
from datasets.suppression import addresses_suppress, unsubscribe_lift
from webhooks.events import contacts_unsubscribed


def contacts_unsubscribe(
    *, tenant_id: int, contact_ids: Iterable[int], source: str, by: str, notes: Mapping[int, str] | None = None
) -> list[int]:
    """Unsubscribe the contacts still subscribed and record why; returns the ids that changed. The row lock and
    the `unsubscribed=False` condition make two paths at once (a click and an import) record one event."""
    now, notes = timezone.now(), notes or {}
    with transaction.atomic():
        subscribed = Contact.objects.for_tenant(tenant_id).filter(pk__in=list(contact_ids), unsubscribed=False)
        changed = list(subscribed.select_for_update().values_list("pk", flat=True))
        Contact.objects.for_tenant(tenant_id).filter(pk__in=changed).update(
            unsubscribed=True, unsubscribed_at=now, updated_at=now
        )
        ConsentEvent.objects.for_tenant(tenant_id).bulk_create(
            ConsentEvent(
                tenant_id=tenant_id,
                contact_id=pk,
                subscribed=False,
                source=source,
                actor=by,
                at=now,
                note=notes.get(pk, ""),
            )
            for pk in changed
        )
        addresses = Contact.objects.for_tenant(tenant_id).filter(pk__in=changed).values_list("pk", "email")
        addresses_suppress(tenant_id=tenant_id, notes={address: notes.get(pk, "") for pk, address in addresses},
                           reason=SuppressionReason.UNSUBSCRIBED, source=source, by=by)  # fmt: skip
        contacts_unsubscribed(tenant_id, changed, source=source, at=now)  # webhooks, once this commits
    return changed


def contact_unsubscribe(*, contact: Contact, source: str, by: str, note: str = "") -> bool:
    """True when this call unsubscribed the contact; False when it already was (nothing new to record)."""
    changed = contacts_unsubscribe(
        tenant_id=contact.tenant_id, contact_ids=[contact.pk], source=source, by=by, notes={contact.pk: note}
    )
    contact.refresh_from_db(fields=["unsubscribed", "unsubscribed_at"])
    return bool(changed)


def contact_resubscribe(*, contact: Contact, source: str, by: str, consent: str) -> bool:
    """Subscribe an unsubscribed contact again, on the strength of `consent` (how and when they opted in)."""
    if not consent.strip():
        raise ValueError("re-subscribing needs the contact's consent on record: say how and when they opted in")
    with transaction.atomic():
        back = Contact.objects.for_tenant(contact.tenant_id).filter(pk=contact.pk, unsubscribed=True)
        changed = back.update(unsubscribed=False, unsubscribed_at=None, updated_at=timezone.now())
        if changed:
            ConsentEvent.objects.for_tenant(contact.tenant_id).create(
                tenant_id=contact.tenant_id, contact=contact, subscribed=True, source=source, actor=by, note=consent
            )
            unsubscribe_lift(tenant_id=contact.tenant_id, address=contact.email)
    contact.refresh_from_db(fields=["unsubscribed", "unsubscribed_at"])
    return bool(changed)
