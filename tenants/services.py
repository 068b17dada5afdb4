"""Tenant workflows callable from commands, the admin and tests."""

from django.contrib.auth import get_user_model
from django.db import transaction

from tenants.models import Membership, Role, Tenant


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
