"""API representations of contacts, items and interactions."""

from rest_framework import serializers

from datasets.models import Contact, Interaction, Item
from tenants.serializers import TenantExternalIdField, TenantModelSerializer


class ContactSerializer(TenantModelSerializer):
    unique_in_tenant = ("external_id",)

    class Meta:
        model = Contact
        fields = ["external_id", "email", "first_name", "last_name", "age", "gender", "locale", "attributes",
                  "unsubscribed", "unsubscribed_at", "created_at"]  # fmt: skip
        read_only_fields = ["unsubscribed_at", "created_at"]


class ItemSerializer(TenantModelSerializer):
    unique_in_tenant = ("external_id",)
    genres = serializers.ListField(child=serializers.CharField(max_length=50), max_length=20, required=False)

    class Meta:
        model = Item
        fields = ["external_id", "title", "year", "genres", "plot", "imdb_rating", "imdb_votes", "maturity_rating",
                  "maturity_rating_string", "promotion", "creation_timestamp", "metadata"]  # fmt: skip


class InteractionSerializer(TenantModelSerializer):
    contact = TenantExternalIdField(Contact)
    item = TenantExternalIdField(Item)

    class Meta:
        model = Interaction
        fields = ["id", "contact", "item", "event_type", "timestamp"]
