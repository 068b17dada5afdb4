"""Tenant workflows callable from commands, the admin and tests."""

from datetime import UTC, date, datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from tenants.models import Membership, QuotaUsage, Role, Tenant


class QuotaExceeded(Exception):
    def __init__(self, *, tenant: Tenant, needed: int, remaining: int):
        self.needed, self.remaining, self.quota = needed, remaining, tenant.email_quota
        super().__init__(f"{needed} needed, {remaining} remain of {tenant.name}'s monthly quota of {self.quota}")


@transaction.atomic
def tenant_create(*, slug: str, name: str, plan: str = "basic", **settings) -> Tenant:
    tenant, _ = Tenant.objects.update_or_create(slug=slug, defaults={"name": name, "plan": plan, **settings})
    return tenant


def membership_add(*, tenant: Tenant, username: str, role: str = Role.MARKETER, password: str | None = None,
                   staff: bool = True) -> Membership:  # fmt: skip
    user, _ = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": staff})
    if password:
        user.set_password(password)
        user.save(update_fields=["password"])
    membership, _ = Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": role})
    return membership


def quota_month(moment: datetime | None = None) -> date:
    """The month (its first day, in UTC) that a moment's emails count in."""
    return (moment or timezone.now()).astimezone(UTC).date().replace(day=1)


def quota_reserve(*, tenant: Tenant, count: int, month: date) -> None:
    """Take `count` emails of the tenant's quota for `month`, or raise QuotaExceeded. One conditional UPDATE: of
    two launches that both fit what was left, the second re-checks after the first and is refused."""
    usage, _ = QuotaUsage.objects.get_or_create(tenant=tenant, month=month)
    room = tenant.email_quota - count
    if not QuotaUsage.objects.filter(pk=usage.pk, reserved__lte=room).update(reserved=F("reserved") + count):
        usage.refresh_from_db()
        remaining = max(tenant.email_quota - usage.reserved, 0)
        raise QuotaExceeded(tenant=tenant, needed=count, remaining=remaining)


def quota_release(*, tenant: Tenant, count: int, month: date) -> None:
    """Give back `count` reserved emails that were not written (the caller makes sure it happens once)."""
    QuotaUsage.objects.filter(tenant=tenant, month=month).update(reserved=Greatest(F("reserved") - count, 0))


def quota_charge(*, tenant: Tenant, count: int, month: date) -> None:
    """Count `count` emails written beyond any reservation, whatever the quota says: they were written."""
    usage, _ = QuotaUsage.objects.get_or_create(tenant=tenant, month=month)
    QuotaUsage.objects.filter(pk=usage.pk).update(reserved=F("reserved") + count)
