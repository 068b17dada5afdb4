"""API representations of contacts, items, interactions and consent changes."""

from django.db import transaction
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from datasets.consent import contact_unsubscribe
from datasets.models import (
    ConsentEvent,
    ConsentSource,
    Contact,
    Interaction,
    Item,
    Suppression,
    SuppressionReason,
    moment_problem,
)
from datasets.suppression import address_normal
from saas.rows import ApiModelSerializer
from tenants.serializers import TenantExternalIdField, TenantModelSerializer

MAX_DEPTH = 20
NUL_MESSAGE = "Null characters are not allowed."  # DRF's own words for text fields


@extend_schema_field({"type": "object", "additionalProperties": True, "example": {"plan": "gold"}})
class JSONObjectField(serializers.JSONField):
    """A JSON object PostgreSQL can store: jsonb refuses NUL characters, and deep nesting serves no one."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError('must be a JSON object, like {"plan": "gold"}')
        _check_storable(value)
        return value


def _check_storable(value) -> None:
    stack = [(value, 1)]
    while stack:  # a loop, not recursion: the depth is what we are checking
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise serializers.ValidationError(f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, str) and "\x00" in node:
            raise serializers.ValidationError(NUL_MESSAGE)
        if isinstance(node, dict):
            stack += [(k, depth) for k in node] + [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node]


def _plausible(moment):
    if moment is not None and (problem := moment_problem(moment)):
        raise serializers.ValidationError(f"{moment:%Y-%m-%d} is {problem}")
    return moment


class ExternalIdField(TenantExternalIdField):
    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:  # PostgreSQL cannot even look such a text up
            raise serializers.ValidationError(NUL_MESSAGE)
        return super().to_internal_value(data)


class ContactSerializer(TenantModelSerializer):
    """`unsubscribed: true` unsubscribes on record; nothing here re-subscribes (that is POST …/resubscribe/)."""

    unique_in_tenant = ("external_id",)
    attributes = JSONObjectField(required=False)
    unsubscribed = serializers.BooleanField(required=False)

    class Meta:
        model = Contact
        fields = ["external_id", "email", "first_name", "last_name", "age", "gender", "locale", "attributes",
                  "unsubscribed", "unsubscribed_at", "created_at", "updated_at"]  # fmt: skip
        read_only_fields = ["unsubscribed_at", "created_at", "updated_at"]

    def validate_unsubscribed(self, value: bool) -> bool:
        if not value and self.instance is not None and self.instance.unsubscribed:
            raise serializers.ValidationError(
                "re-subscribing needs the contact's consent on record: "
                f'POST /api/v1/contacts/{self.instance.external_id}/resubscribe/ with {{"consent": "how and when"}}'
            )
        return value

    def create(self, validated_data):
        unsubscribe = validated_data.pop("unsubscribed", False)
        with transaction.atomic():
            return self._consent(super().create(validated_data), unsubscribe)

    def update(self, instance, validated_data):
        unsubscribe = validated_data.pop("unsubscribed", False)
        with transaction.atomic():
            return self._consent(super().update(instance, validated_data), unsubscribe)

    def _consent(self, contact: Contact, unsubscribe: bool) -> Contact:
        if unsubscribe:
            by = str(self.context["request"].user)
            contact_unsubscribe(contact=contact, source=ConsentSource.API, by=by)
        return contact


class ConsentNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class ResubscribeSerializer(serializers.Serializer):
    consent = serializers.CharField(
        max_length=1000, help_text="How and when the contact opted in again; kept with the change."
    )


class ConsentEventSerializer(ApiModelSerializer):
    class Meta:
        model = ConsentEvent
        fields = ["subscribed", "source", "actor", "note", "at"]


class ItemSerializer(TenantModelSerializer):
    unique_in_tenant = ("external_id",)
    genres = serializers.ListField(child=serializers.CharField(max_length=50), max_length=20, required=False)
    metadata = JSONObjectField(required=False)

    class Meta:
        model = Item
        fields = ["external_id", "title", "year", "genres", "plot", "imdb_rating", "imdb_votes", "maturity_rating",
                  "maturity_rating_string", "promotion", "creation_timestamp", "metadata"]  # fmt: skip
        extra_kwargs = {"imdb_rating": {"min_value": 0, "max_value": 10}}

    def validate_creation_timestamp(self, value):
        return _plausible(value)


class InteractionSerializer(TenantModelSerializer):
    contact = ExternalIdField(Contact)
    item = ExternalIdField(Item)

    class Meta:
        model = Interaction
        fields = ["id", "contact", "item", "event_type", "timestamp"]

    def validate_timestamp(self, value):
        return _plausible(value)


API_REASONS = [
    SuppressionReason.IMPORTED,
    SuppressionReason.MANUAL,
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.COMPLAINT,
]  # fmt: skip  (an unsubscribe goes through the contact, with its consent)


class SuppressionSerializer(ApiModelSerializer):
    class Meta:
        model = Suppression
        fields = ["id", "address", "reason", "source", "actor", "note", "at"]
        read_only_fields = ["id", "address", "reason", "source", "actor", "note", "at"]


class SuppressionAddSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=254)
    reason = serializers.ChoiceField(choices=API_REASONS, default=SuppressionReason.IMPORTED)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate_address(self, value):
        try:
            return address_normal(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class InteractionRowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The row's position in the list sent, from 0.")
    errors = serializers.DictField(help_text="Each invalid field with its messages (`detail` for a duplicate).")
    duplicate_of = serializers.IntegerField(required=False, help_text="A duplicate: the id of the stored row.")


class InteractionBulkSerializer(serializers.Serializer):
    """207 to a list: the good rows stored, each bad one said by its index."""

    created = serializers.IntegerField()
    rejected = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of the stored rows, in order.")
    errors = InteractionRowErrorSerializer(many=True)


class SuppressionRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="The row's position in the list sent, from 0.")
    error = serializers.CharField()


class SuppressionBulkSerializer(serializers.Serializer):
    """207 to a list: which addresses were added, which were there already, and the bad rows by index."""

    added = serializers.ListField(child=serializers.CharField())
    already = serializers.ListField(child=serializers.CharField())
    errors = SuppressionRowErrorSerializer(many=True)


# --- bulk upsert (datasets.upsert) ------------------------------------------------------------------------------

MAX_UPSERT = 10_000


class _UpsertRow:
    """A row of a bulk upsert: checked as a partial write (only the fields it has are written), by external_id,
    whose uniqueness the upsert itself handles (no query per row)."""

    unique_in_tenant = ()

    def validate(self, attrs):
        if "external_id" not in attrs:
            raise serializers.ValidationError({"external_id": ["This field is required."]})
        return super().validate(attrs)


class ContactUpsertRowSerializer(_UpsertRow, ContactSerializer):
    """`unsubscribed: true` unsubscribes on record; `false` never re-subscribes (the row's other fields land)."""

    class Meta(ContactSerializer.Meta):
        fields = ["external_id", "email", "first_name", "last_name", "age", "gender", "locale", "attributes",
                  "unsubscribed"]  # fmt: skip


class ItemUpsertRowSerializer(_UpsertRow, ItemSerializer):
    class Meta(ItemSerializer.Meta):
        pass


class InteractionUpsertRowSerializer(serializers.Serializer):
    """An event by the contact's and the item's external ids; the four fields are what identifies it."""

    contact = serializers.CharField(max_length=100, help_text="The contact's external_id.")
    item = serializers.CharField(max_length=100, help_text="The item's external_id.")
    event_type = serializers.CharField(max_length=50, required=False, default="watch")
    timestamp = serializers.DateTimeField()

    def validate_timestamp(self, value):
        return _plausible(value)


def _upsert_request(name: str, row):
    rows = serializers.ListField(child=row, min_length=1, max_length=MAX_UPSERT,
                                 help_text=f"1 to {MAX_UPSERT:,} rows (and at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes)")  # fmt: skip
    return type(name, (serializers.Serializer,), {"rows": rows, "__doc__": f"{name[:-10]}: `rows` to upsert."})


ContactUpsertSerializer = _upsert_request("ContactUpsertSerializer", ContactUpsertRowSerializer())
ItemUpsertSerializer = _upsert_request("ItemUpsertSerializer", ItemUpsertRowSerializer())
InteractionUpsertSerializer = _upsert_request("InteractionUpsertSerializer", InteractionUpsertRowSerializer())


class UpsertRowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The row's position in `rows`, from 0.")
    external_id = serializers.CharField(allow_null=True, help_text="The row's external_id (null when it has none).")
    fields = serializers.DictField(help_text="Each invalid field with its messages (`non_field_errors`: the row).")


class UpsertNoticeSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class UpsertResultSerializer(serializers.Serializer):
    """207: what became of each row; the good rows are written even when others fail."""

    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField(help_text="Rows equal to what is stored: nothing written.")
    superseded = serializers.IntegerField(help_text="Rows a later row of the same request replaced.")
    failed = serializers.IntegerField()
    errors = UpsertRowErrorSerializer(many=True)
    notices = UpsertNoticeSerializer(many=True, help_text="Rows written, with something worth knowing.")
