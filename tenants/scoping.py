"""The tenant scope: which tenant the current code acts for, and a manager that refuses to run without one.

Every tenant-owned model uses `TenantScopedManager` as its default manager, so a query outside
`tenant_scope(...)` raises instead of quietly reading every tenant's rows. A tenant-owned row's foreign keys to
other tenant-owned rows stay inside its tenant: checked here on validation and save, and by the database for
paths that skip save() (tenants.constraints).
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.core.exceptions import ValidationError
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

    def clean_fields(self, exclude=None):
        """Field validation, plus: each foreign key points at a row of this row's own tenant. Here rather than
        in clean(), which models override, and per field, so a form shows the error at the field."""
        errors = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        skip = set(exclude or ())
        for name in self.tenant_key_mismatches():
            if name not in skip:
                errors.setdefault(name, []).append(self._mismatch_message(name))
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        fields = kwargs.get("update_fields")
        names = None if fields is None or "tenant" in fields or "tenant_id" in fields else set(fields)
        mismatched = self.tenant_key_mismatches(names)
        if mismatched:
            raise ValidationError({name: self._mismatch_message(name) for name in mismatched})
        super().save(*args, **kwargs)

    def tenant_key_mismatches(self, names=None) -> list[str]:
        """The foreign keys (all, or those named) that point at another tenant's row."""
        mismatched = []
        for field in tenant_keys(type(self)):
            target_id = getattr(self, field.attname)
            if target_id is None or (names is not None and not {field.name, field.attname} & names):
                continue
            target = field.get_cached_value(self, default=None)
            if target is not None and target.pk == target_id:
                tenant_id = target.tenant_id
            else:  # not loaded: one small query (bulk paths skip save(); the database checks those)
                rows = field.related_model.dangerously_unscoped.filter(pk=target_id)
                tenant_id = rows.values_list("tenant_id", flat=True).first()
            if tenant_id is not None and tenant_id != self.tenant_id:
                mismatched.append(field.name)
        return mismatched

    def _mismatch_message(self, name: str) -> str:
        target = self._meta.get_field(name).related_model._meta.verbose_name
        return f"Choose a {target} of this {self._meta.verbose_name}'s own tenant."


def tenant_keys(model) -> list[models.ForeignKey]:
    """A model's foreign keys (and one-to-ones) to tenant-owned models: each must stay inside one tenant."""
    if not issubclass(model, TenantOwned):
        return []
    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and issubclass(field.related_model, TenantOwned)
    ]
