"""Every foreign key from a tenant-owned row to another tenant-owned row stays inside one tenant: refused by the
model (validation and save) and, for writes that skip save(), by the database. The keys are found by walking the
models, so a new one cannot skip these tests."""

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, PromptTemplate
from tenants.constraints import SameTenantKey
from tenants.models import Role
from tenants.scoping import tenant_keys
from tenants.services import membership_add

from .test_routes import tenant_world

KEYS = [(model, field) for model in apps.get_models() for field in tenant_keys(model)]


@pytest.fixture
def worlds(tenant, other_tenant):
    return tenant_world(tenant, ""), tenant_world(other_tenant, "g")


def test_the_walk_finds_the_keys():
    names = {f"{model.__name__}.{field.name}" for model, field in KEYS}
    assert {
        "Campaign.template",
        "CampaignRun.campaign",
        "GeneratedEmail.run",
        "GeneratedEmail.contact",
        "BatchRecord.run",
        "BatchRecord.contact",
        "Interaction.contact",
        "Interaction.item",
    } <= names


def rows(worlds, model, field):
    mine, theirs = worlds
    assert model in mine and field.related_model in theirs, f"add a {model.__name__} to tests' tenant_world"
    return mine[model], theirs[field.related_model]


@pytest.mark.parametrize("model, field", KEYS, ids=[f"{m.__name__}.{f.name}" for m, f in KEYS])
def test_the_model_refuses_another_tenants_row(worlds, scoped, model, field):
    row, foreign = rows(worlds, model, field)
    setattr(row, field.name, foreign)
    with pytest.raises(ValidationError) as refused:
        row.full_clean()
    assert field.name in refused.value.message_dict and "own tenant" in str(refused.value)
    with pytest.raises(ValidationError, match="own tenant"):
        row.save()
    fresh = model.dangerously_unscoped.get(pk=row.pk)
    setattr(fresh, field.attname, foreign.pk)  # by id, nothing cached: looked up
    with pytest.raises(ValidationError, match="own tenant"):
        fresh.save(update_fields=[field.name])
    assert getattr(model.dangerously_unscoped.get(pk=row.pk), field.attname) != foreign.pk


@pytest.mark.parametrize("model, field", KEYS, ids=[f"{m.__name__}.{f.name}" for m, f in KEYS])
def test_the_database_refuses_another_tenants_row(worlds, model, field):
    """update() skips save(), as bulk_create does: PostgreSQL refuses at the latest when the transaction ends."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    name = SameTenantKey(model._meta.model_name, field.name).constraint_name(model._meta.db_table, field.column)
    assert name in constraints, (
        f"add SameTenantKey({model._meta.model_name!r}, {field.name!r}) to a migration of {model._meta.app_label} "
        f"(and TenantUnique({field.related_model._meta.model_name!r}) if its model has none yet)"
    )
    row, foreign = rows(worlds, model, field)
    with pytest.raises(IntegrityError, match="same_tenant"), transaction.atomic():
        model.dangerously_unscoped.filter(pk=row.pk).update(**{field.attname: foreign.pk})
        connection.check_constraints()  # what COMMIT does with the deferred keys
    with pytest.raises(IntegrityError, match="same_tenant"), transaction.atomic():
        copy = model.dangerously_unscoped.get(pk=row.pk)
        model.dangerously_unscoped.filter(pk=row.pk).delete()  # written again, in bulk, pointing elsewhere
        setattr(copy, field.attname, foreign.pk)
        model.dangerously_unscoped.bulk_create([copy])
        connection.check_constraints()


def test_the_database_keeps_rows_of_one_tenant_working(worlds, tenant):
    """The keys refuse nothing legitimate: a tenant's whole graph deletes (cascades in any order) and commits."""
    connection.check_constraints()
    tenant.delete()
    connection.check_constraints()


@pytest.fixture
def two_tenant_member(tenant, other_tenant):
    """A staff member of both tenants: the admin offers rows of both, and must not let them mix."""
    user = membership_add(tenant=tenant, username="mia", role=Role.OWNER).user
    membership_add(tenant=other_tenant, username="mia", role=Role.OWNER)
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_offers_only_the_objects_tenants_rows(two_tenant_member, worlds):
    mine, theirs = worlds
    page = two_tenant_member.get(reverse("admin:campaigns_campaign_change", args=[mine[Campaign].pk]))
    form = page.context["adminform"].form
    assert list(form.fields["template"].queryset) == [mine[PromptTemplate]]
    assert "tenant" not in form.fields  # a row never moves to another tenant


def test_the_admin_refuses_mixing_tenants_on_change_and_add(two_tenant_member, worlds, tenant):
    mine, theirs = worlds
    campaign = mine[Campaign]
    data = {
        "name": "mixed",
        "n_items": "3",
        "task": "marketing_email",
        "audience": "{}",
        "include_genres": "[]",
        "exclude_genres": "[]",
        "skip_emailed_days": "0",
        "promotion_share": "0",
        "tenant": str(tenant.pk),
        "template": str(theirs[PromptTemplate].pk),
        "review_required": "on",
        "subject_variants": "1",
        "subject_mode": "pick",
    }
    change = two_tenant_member.post(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), data)
    assert change.status_code == 200 and "template" in change.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.template_id == mine[PromptTemplate].pk and campaign.name != "mixed"
    add = two_tenant_member.post(reverse("admin:campaigns_campaign_add"), data)
    assert add.status_code == 200 and "own tenant" in str(add.context["adminform"].form.errors["template"])
    assert not Campaign.dangerously_unscoped.filter(name="mixed").exists()
