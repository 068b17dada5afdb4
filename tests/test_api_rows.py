"""List pages render rows through saas/rows.py; the output must be exactly what DRF's own rendering gives, on every
list the API serves, with odd values (None, decimals, datetimes, unicode, nested JSON, related slugs)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models.signals import post_init
from rest_framework import serializers

from campaigns.models import GeneratedEmail
from campaigns.serializers import CampaignRunSerializer, GeneratedEmailSerializer
from datasets.models import Contact, SuppressionReason
from datasets.serializers import ContactSerializer, InteractionSerializer, ItemSerializer
from datasets.suppression import address_suppress
from saas.rows import ApiModelSerializer, RowsSerializer, row_plan, values_lookups, values_plan
from saas.urls import router
from tenants.scoping import tenant_scope

from .test_routes import tenant_world

LISTS = [prefix for prefix, viewset, _ in router.registry if hasattr(viewset, "list")]


def odd_values(tenant, world):
    """Values DRF converts: a decimal cost, datetimes with microseconds, None, unicode, nested JSON."""
    with tenant_scope(tenant):
        email = world[GeneratedEmail]
        email.cost_usd = Decimal("0.00012345")
        email.sent_at = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
        email.judge_score, email.judge_reasons = 0.25, [{"code": "tone", "message": "Zoë’s “tone” — off"}]
        email.subject_candidates, email.subject_variant = ["Ünïcode 🎬", "Plain"], 1
        email.save()
        contact = world[Contact]
        contact.attributes = {"plan": "gold", "nested": {"list": [1, 2.5, None, "ß"]}}
        contact.first_name, contact.age = "Zoë", None
        contact.save()
        address_suppress(tenant_id=tenant.pk, address="O'Brien+tag@Exämple.COM", reason=SuppressionReason.COMPLAINT,
                         source="api", by="test", note="“quoted” — note")  # fmt: skip


@pytest.mark.parametrize("prefix", LISTS)
def test_every_list_renders_exactly_as_drf_does(prefix, tenant, owner_api, settings):
    world = tenant_world(tenant, "")
    odd_values(tenant, world)
    fast = owner_api.get(f"/api/v1/{prefix}/?page_size=1000")
    settings.API_FAST_ROWS = False
    slow = owner_api.get(f"/api/v1/{prefix}/?page_size=1000")
    assert fast.status_code == slow.status_code == 200, (fast.content[:300], slow.content[:300])
    assert fast.json()["results"], f"{prefix}: the world has no rows for this list, so nothing was compared"
    assert fast.json() == slow.json()
    assert fast.content == slow.content  # the same bytes, key order included


def test_the_busy_lists_take_the_fast_path():
    """A field the plan does not understand silently sends a whole list back to the slow path: these must not.
    (Runs do go the DRF way: their progress figures are model properties.)"""
    for serializer in (ContactSerializer(context={}), GeneratedEmailSerializer(), ItemSerializer(context={}),
                       InteractionSerializer(context={})):  # fmt: skip
        assert row_plan(serializer) is not None, type(serializer).__name__
        assert isinstance(type(serializer)(many=True, context={}), RowsSerializer)


class WithMethodField(ApiModelSerializer):
    shout = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = ["external_id", "shout"]

    def get_shout(self, contact) -> str:
        return contact.external_id.upper()


class WithOwnRepresentation(ApiModelSerializer):
    class Meta:
        model = Contact
        fields = ["external_id", "email"]

    def to_representation(self, instance):
        return {**super().to_representation(instance), "extra": 1}


class WithProperty(ApiModelSerializer):
    full = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = Contact
        fields = ["external_id", "full"]


def test_a_method_field_is_given_the_row(tenant):
    world = tenant_world(tenant, "")
    contacts = [world[Contact]]
    assert row_plan(WithMethodField()) is not None
    assert WithMethodField(contacts, many=True).data == [
        {"external_id": contacts[0].external_id, "shout": contacts[0].external_id.upper()}
    ]


@pytest.mark.parametrize("serializer_class", [WithOwnRepresentation, WithProperty])
def test_what_the_plan_does_not_understand_renders_the_drf_way(serializer_class, tenant):
    world = tenant_world(tenant, "")
    with tenant_scope(tenant):
        contacts = list(Contact.objects.for_tenant(tenant).order_by("pk"))
    assert row_plan(serializer_class()) is None
    assert row_plan(CampaignRunSerializer()) is None
    many = serializer_class(contacts, many=True).data
    assert [dict(row) for row in many] == [dict(serializer_class(c).data) for c in contacts]
    assert world  # the rows came from the world


def test_a_missing_related_row_renders_as_none_like_drf(tenant):
    """DRF renders a related object that does not exist as None; so does the plan."""

    class EmailContact(ApiModelSerializer):
        contact = serializers.SlugRelatedField(slug_field="external_id", read_only=True)

        class Meta:
            model = GeneratedEmail
            fields = ["id", "contact"]

    world = tenant_world(tenant, "")
    email = world[GeneratedEmail]
    email.contact_id = None  # as a row read before its contact was deleted would be, in memory
    assert row_plan(EmailContact()) is not None
    assert EmailContact([email], many=True).data == [EmailContact(email).data] == [{"id": email.pk, "contact": None}]


def test_fields_are_built_once_per_class_and_never_shared():
    """ApiModelSerializer builds a class's fields once; every instance gets its own copies, and a subclass its own."""
    from datasets.serializers import ContactUpsertRowSerializer

    first, second = ContactSerializer(context={}), ContactSerializer(context={})
    assert first.fields["email"] is not second.fields["email"]
    assert first.fields["email"].parent is first and second.fields["email"].parent is second
    first.fields["email"].max_length = 1  # one instance's change stays its own
    assert ContactSerializer(context={}).fields["email"].max_length == second.fields["email"].max_length != 1
    assert "created_at" in first.fields and "created_at" not in ContactUpsertRowSerializer(context={}).fields
    assert "_built_fields" in ContactSerializer.__dict__ and "_built_fields" in ContactUpsertRowSerializer.__dict__


def test_the_busy_lists_read_values_rows_not_model_instances(tenant, owner_api):
    """Contacts, items and emails pages are read with values(): not one model instance is built for their rows
    (building them was most of reading a page), and the page is still what DRF renders."""
    for serializer_class in (ContactSerializer, GeneratedEmailSerializer, ItemSerializer):
        assert values_lookups(serializer_class), serializer_class.__name__
    assert values_lookups(GeneratedEmailSerializer).count("contact__external_id") == 1
    world = tenant_world(tenant, "")
    built = []

    def count(sender, instance, **kwargs):
        built.append(type(instance).__name__)

    post_init.connect(count)
    try:
        for prefix in ("contacts", "items", "emails"):
            built.clear()
            page = owner_api.get(f"/api/v1/{prefix}/")
            assert page.status_code == 200 and page.json()["results"], prefix
            rows = {"contacts": "Contact", "items": "Item", "emails": "GeneratedEmail"}[prefix]
            assert rows not in built and "Contact" not in built, (prefix, built)
    finally:
        post_init.disconnect(count)
    email = owner_api.get("/api/v1/emails/").json()["results"][0]
    assert email["contact"] == world[Contact].external_id and email["run"] == world[GeneratedEmail].run_id


def test_a_path_through_a_nullable_relation_needs_the_model_row():
    """values() would LEFT JOIN through a nullable relation where DRF may leave the field out: such a list is read
    as model rows (the DRF-identical path); a nullable relation named last is fine (None both ways). A page of dicts
    for a serializer that cannot read them is refused, not rendered wrongly."""
    from campaigns.models import CampaignTick

    class TickRunStatus(ApiModelSerializer):
        run_status = serializers.CharField(source="run.status", read_only=True)

        class Meta:
            model = CampaignTick
            fields = ["id", "run_status"]

    class TickRun(ApiModelSerializer):
        run = serializers.PrimaryKeyRelatedField(read_only=True)
        campaign_name = serializers.CharField(source="campaign.name", read_only=True)

        class Meta:
            model = CampaignTick
            fields = ["id", "run", "campaign_name"]

    assert CampaignTick._meta.get_field("run").null
    assert values_plan(TickRunStatus()) is None and row_plan(TickRunStatus()) is not None
    assert values_lookups(TickRunStatus) is None
    assert [lookup for _, lookup, _ in values_plan(TickRun())] == ["id", "run", "campaign__name"]
    with pytest.raises(TypeError, match="cannot render values"):
        RowsSerializer(child=WithMethodField()).to_representation([{"external_id": "c1"}])


def test_a_to_many_field_needs_the_model_row():
    """values() gives a row per related row through a many-to-many step (`groups__name`): such a list keeps model
    rows."""
    from django.contrib.auth import get_user_model

    class UserGroups(ApiModelSerializer):
        groups = serializers.CharField(source="groups.name", read_only=True)

        class Meta:
            model = get_user_model()
            fields = ["id", "groups"]

    assert get_user_model()._meta.get_field("groups").many_to_many
    assert values_plan(UserGroups()) is None and row_plan(UserGroups()) is not None
