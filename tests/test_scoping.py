"""Tenant isolation in depth: the manager fails closed, and the base API view cannot be bypassed quietly."""

import pytest

from datasets.models import Contact
from tenants.api import TenantScopedViewSet
from tenants.models import ApiKey
from tenants.scoping import TenantScopeError, tenant_scope


def test_manager_refuses_queries_outside_a_tenant_scope(catalog):
    with pytest.raises(TenantScopeError, match="outside a tenant scope"):
        list(Contact.objects.all())


def test_scope_and_for_tenant_only_see_that_tenant(tenant, other_tenant, catalog, other_catalog):
    with tenant_scope(tenant):
        assert set(Contact.objects.values_list("tenant_id", flat=True)) == {tenant.pk}
        assert Contact.objects.count() == len(catalog[0])
    with tenant_scope(other_tenant):
        assert Contact.objects.count() == len(other_catalog[0])
    assert Contact.objects.for_tenant(other_tenant).count() == len(other_catalog[0])


def test_related_managers_follow_the_scope(tenant, other_tenant, catalog, other_catalog):
    contact = catalog[0][0]
    with tenant_scope(tenant):
        assert contact.interactions.count() > 0
    with tenant_scope(other_tenant):
        assert contact.interactions.count() == 0


def test_api_views_cannot_override_scoping():
    with pytest.raises(TypeError, match="overrides get_queryset"):

        class Sneaky(TenantScopedViewSet):
            def get_queryset(self):
                return Contact.dangerously_unscoped.all()


def test_api_keys_are_stored_as_prefix_and_hmac_only(tenant):
    key, plain = ApiKey.objects.issue(tenant=tenant, name="crm")
    assert plain.startswith(f"ms_{key.prefix}_")
    stored = ApiKey.objects.filter(pk=key.pk).values()[0]
    assert plain not in str(stored)
    assert ApiKey.objects.authenticate(plain) == key
    assert ApiKey.objects.authenticate(plain + "x") is None
    assert ApiKey.objects.authenticate(f"ms_{key.prefix}_wrong") is None
    key.revoke(actor="test")
    assert ApiKey.objects.authenticate(plain) is None


def test_the_api_scope_ends_with_the_request(owner_api, catalog):
    from tenants.scoping import current_tenant

    assert owner_api.get("/api/v1/contacts/").status_code == 200
    assert owner_api.get("/api/v1/contacts/nobody/").status_code == 404
    assert current_tenant() is None
