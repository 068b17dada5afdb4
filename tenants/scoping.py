"""The tenant scope: which tenant the current code acts for, and a manager that refuses to run without one.

Every tenant-owned model uses `TenantScopedManager` as its default manager, so a query outside
`tenant_scope(...)` raises instead of quietly reading every tenant's rows.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models

_current_tenant: ContextVar = ContextVar("current_tenant", default=None)


class TenantScopeError(RuntimeError):
    pass


class TenantSet:
    """A scope over several tenants: a staff member's memberships in the admin, or every tenant for a superuser."""

    def __init__(self, ids=None):
        self.ids = None if ids is None else frozenset(ids)  # None: all tenants

    def filter(self, qs):
        return qs if self.ids is None else qs.filter(tenant_id__in=self.ids)


def current_tenant():
    return _current_tenant.get()


@contextmanager
def tenant_scope(tenant):
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)


class TenantScopedManager(models.Manager):
    def get_queryset(self):
        tenant = current_tenant()
        if tenant is None:
            raise TenantScopeError(
                f"{self.model.__name__} queried outside a tenant scope: "
                "wrap the code in tenant_scope(tenant) or use .for_tenant(tenant)"
            )
        if isinstance(tenant, TenantSet):
            return tenant.filter(super().get_queryset())
        return super().get_queryset().filter(tenant=tenant)

    def for_tenant(self, tenant):
        return super().get_queryset().filter(tenant=tenant)


class TenantOwned(models.Model):
    """Base for every row that belongs to one tenant."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantScopedManager()
    # Cross-tenant access (superuser admin, maintenance) must say so by name.
    dangerously_unscoped = models.Manager()

    class Meta:
        abstract = True
