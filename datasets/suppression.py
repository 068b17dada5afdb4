"""The suppression list's only writer and reader: addresses a tenant must not email, one row per address.

Every unsubscribe puts the contact's address here (datasets.consent); bounces, complaints, imports and people add
theirs. A run's audience leaves these addresses out and the send path checks again, so an address suppressed
after a draft was written still gets nothing. A re-subscribe lifts only an unsubscribe: a bounce or a complaint
stays until a person removes it on purpose."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from datasets.models import Suppression, SuppressionReason


def address_normal(address: str) -> str:
    """The form an address is kept and compared in; ValueError when it is not an email address."""
    normal = (address or "").strip().lower()
    try:
        validate_email(normal)
    except ValidationError:
        raise ValueError(f"{str(address)[:80]!r} is not an email address") from None
    return normal


def address_suppress(*, tenant_id: int, address: str, reason: str, source: str, by: str, note: str = "") -> bool:
    """Put the address on the tenant's list; False when it already was (its first reason stays, except that a
    complaint or a hard bounce replaces an unsubscribe: it is the stronger reason, and a re-subscribe must not
    lift it)."""
    address = address_normal(address)
    rows = Suppression.objects.for_tenant(tenant_id)
    try:
        with transaction.atomic():
            rows.create(tenant_id=tenant_id, address=address, reason=reason, source=source[:40], actor=by[:200],
                        note=note)  # fmt: skip
            return True
    except IntegrityError:  # already there, or a refusal of another kind: then it is not there, and says so
        if not rows.filter(address=address).exists():
            raise
        if reason in (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT):
            rows.filter(address=address, reason=SuppressionReason.UNSUBSCRIBED).update(
                reason=reason, source=source[:40], actor=by[:200], note=note
            )
        return False


def addresses_suppress(*, tenant_id: int, notes: dict[str, str], reason: str, source: str, by: str) -> None:
    """Many addresses ({address: note}) at once, as address_suppress does one: in one INSERT per thousand, an address
    already listed keeps its row (a strong reason upgrades an unsubscribe). Addresses that are not addresses are
    left out (nothing can be sent to them)."""
    normal = {}
    for address, note in notes.items():
        try:
            normal[address_normal(address)] = note
        except ValueError:
            continue
    rows = Suppression.objects.for_tenant(tenant_id)
    rows.bulk_create(
        [Suppression(tenant_id=tenant_id, address=address, reason=reason, source=source[:40], actor=by[:200],
                     note=note) for address, note in normal.items()],
        ignore_conflicts=True, batch_size=1000,
    )  # fmt: skip
    if reason in (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT):
        rows.filter(address__in=list(normal), reason=SuppressionReason.UNSUBSCRIBED).update(
            reason=reason, source=source[:40], actor=by[:200]
        )


def addresses_suppressed(*, tenant_id: int, addresses: Iterable[str]) -> set[str]:
    wanted = {(address or "").strip().lower() for address in addresses}
    rows = Suppression.objects.for_tenant(tenant_id).filter(address__in=wanted)
    return set(rows.values_list("address", flat=True))


def suppression_of(*, tenant_id: int, address: str) -> Suppression | None:
    return Suppression.objects.for_tenant(tenant_id).filter(address=(address or "").strip().lower()).first()


def unsubscribe_lift(*, tenant_id: int, address: str) -> bool:
    """A re-subscribe: the address's unsubscribe comes off the list; any other reason stays."""
    rows = Suppression.objects.for_tenant(tenant_id).filter(
        address=(address or "").strip().lower(), reason=SuppressionReason.UNSUBSCRIBED
    )
    return bool(rows.delete()[0])
