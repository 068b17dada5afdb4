"""REST endpoints for the tenant's contacts, items and interactions, and the recorded consent actions."""

from django.db import IntegrityError, transaction
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, parsers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.metadata import SimpleMetadata
from rest_framework.response import Response

from datasets.consent import contact_resubscribe, contact_unsubscribe
from datasets.filters import ContactFilter, InteractionFilter, ItemFilter, SuppressionFilter
from datasets.models import ConsentSource, Contact, Interaction, Item, Suppression
from datasets.serializers import (
    MAX_UPSERT,
    ConsentEventSerializer,
    ConsentNoteSerializer,
    ContactSerializer,
    ContactUpsertRowSerializer,
    ContactUpsertSerializer,
    InteractionBulkSerializer,
    InteractionSerializer,
    InteractionUpsertRowSerializer,
    InteractionUpsertSerializer,
    ItemSerializer,
    ItemUpsertRowSerializer,
    ItemUpsertSerializer,
    ResubscribeSerializer,
    SuppressionAddSerializer,
    SuppressionBulkSerializer,
    SuppressionSerializer,
    UpsertResultSerializer,
)
from datasets.suppression import address_suppress
from datasets.upsert import UpsertResult, contacts_upsert, interactions_upsert, items_upsert
from saas.api_errors import Conflict, RequestTooLarge
from saas.bulk import Checked, RowProblem, rows_check, rows_write
from saas.schema import ErrorSerializer, OneOrMany
from tenants.api import TenantScopedViewSet

MAX_BULK = 1000
DUPLICATE = "this interaction is already stored"
# Any text but a slash (a dot too: `john.doe`; `john.doe.json` still picks the JSON renderer) or NUL (PostgreSQL
# cannot look up a text holding it: such a URL is simply not found).
EXTERNAL_ID = r"[^/\x00]+"


class JSONParser(parsers.JSONParser):
    """DRF's parser answers a ValueError with 400; a document nested past Python's recursion limit gets the same."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None


PARSERS = [JSONParser, parsers.FormParser, parsers.MultiPartParser]


CRUD_DOCS = {
    "list": "The tenant's {name}, a page at a time (cursor), filtered by the query parameters below.",
    "create": "Create one {one}.",
    "retrieve": "One {one}.",
    "update": "Replace a {one}'s writable fields.",
    "partial_update": "Change some of a {one}'s fields.",
    "destroy": "Delete a {one}; a 409 names the rows that still use it.",
}


def crud_docs(one: str, many: str):
    """extend_schema_view for the CRUD actions the view has, each with a summary naming the resource."""

    def decorate(viewset):
        docs = {name: extend_schema(summary=text.format(one=one, name=many))
                for name, text in CRUD_DOCS.items() if hasattr(viewset, name)}  # fmt: skip
        return extend_schema_view(**docs)(viewset)

    return decorate


def upsert_docs(many: str, request, example_row: dict):
    """The schema of a view's bulk upsert (PUT on the collection)."""
    return extend_schema(
        operation_id=f"{many}_upsert",
        summary=f"Create or update up to {MAX_UPSERT:,} {many} at once",
        request=request,
        responses={207: OpenApiResponse(UpsertResultSerializer, "Counts, and each bad row by index; good rows kept.")},
        examples=[
            OpenApiExample("rows", request_only=True, value={"rows": [example_row]}),
            OpenApiExample("answer", response_only=True, status_codes=["207"], value={
                "created": 1, "updated": 0, "unchanged": 0, "superseded": 0, "failed": 1,
                "errors": [{"index": 1, "external_id": "u2", "fields": {"email": ["Enter a valid email address."]}}],
                "notices": []}),
        ],
    )  # fmt: skip


class UpsertMetadata(SimpleMetadata):
    """OPTIONS: DRF describes a PUT by fetching the object, which a collection has not: a collection describes no writes."""

    def determine_actions(self, request, view):
        return super().determine_actions(request, view) if view.detail else {}


class UpsertMixin:
    """PUT on the collection: `{"rows": [...]}`, each row checked on its own, the good ones written in bulk (207)."""

    metadata_class = UpsertMetadata

    upsert_row = None  # the row's serializer class
    upsert_partial = True  # only the fields a row has are written

    def upsert(self, request, *args, **kwargs):
        rows = request.data.get("rows") if isinstance(request.data, dict) else None
        if not isinstance(rows, list) or not rows:
            raise ValidationError({"rows": [f'a list of 1 to {MAX_UPSERT:,} rows is required: {{"rows": [...]}}']})
        if len(rows) > MAX_UPSERT:
            raise RequestTooLarge(f"at most {MAX_UPSERT:,} rows per request; this one has {len(rows):,}: split it")
        row = self.upsert_row(partial=self.upsert_partial, context=self.get_serializer_context())
        result = self.upsert_rows(rows_check(row, rows))
        return Response(result.as_dict(), status=207)

    def upsert_rows(self, checked: Checked) -> UpsertResult:
        raise NotImplementedError


class CrudViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, TenantScopedViewSet,
):  # fmt: skip
    parser_classes = PARSERS


@crud_docs("contact", "contacts")
class ContactViewSet(UpsertMixin, CrudViewSet):
    """Contacts (Personalize's users), by the tenant's own `external_id`. PUT on the collection upserts up to 10,000
    by external_id with the import's consent rules: `unsubscribed: true` unsubscribes on record, nothing
    re-subscribes."""

    @upsert_docs(
        "contacts",
        ContactUpsertSerializer,
        {"external_id": "u1", "email": "pat@example.com", "first_name": "Pat", "attributes": {"plan": "gold"}},
    )
    def upsert(self, request, *args, **kwargs):
        return super().upsert(request, *args, **kwargs)

    scope_model = Contact
    upsert_row = ContactUpsertRowSerializer
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    lookup_field = "external_id"
    lookup_value_regex = EXTERNAL_ID

    @extend_schema(summary="Unsubscribe a contact, on record", request=ConsentNoteSerializer,
                   responses=ContactSerializer)  # fmt: skip
    @action(detail=True, methods=["post"])
    def unsubscribe(self, request, external_id=None):
        """Unsubscribe on record (optional "note"); a contact already out stays out and nothing new is written."""
        contact, note = self.get_object(), ConsentNoteSerializer(data=request.data)
        note.is_valid(raise_exception=True)
        reason = note.validated_data.get("note", "")
        contact_unsubscribe(contact=contact, source=ConsentSource.API, by=str(request.user), note=reason)
        return Response(self.get_serializer(contact).data)

    @extend_schema(
        summary="Re-subscribe a contact who opted in again",
        request=ResubscribeSerializer,
        responses=ContactSerializer,
        examples=[
            OpenApiExample(
                "consent", value={"consent": "ticked the newsletter box at checkout, 2026-03-01"}, request_only=True
            )
        ],  # fmt: skip
    )
    @action(detail=True, methods=["post"])
    def resubscribe(self, request, external_id=None):
        """Only with "consent": how and when the contact opted in again, kept with the change."""
        contact, body = self.get_object(), ResubscribeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        consent = body.validated_data["consent"]
        contact_resubscribe(contact=contact, source=ConsentSource.API, by=str(request.user), consent=consent)
        return Response(self.get_serializer(contact).data)

    @extend_schema(summary="A contact's consent history", responses=ConsentEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def consent(self, request, external_id=None):
        """Every consent change of the contact, oldest first."""
        events = self.get_object().consent_events.order_by("at", "pk")
        return Response(ConsentEventSerializer(events, many=True).data)

    def upsert_rows(self, checked: Checked) -> UpsertResult:
        return contacts_upsert(tenant=self.tenant, checked=checked, by=str(self.request.user))


@crud_docs("item", "items")
class ItemViewSet(UpsertMixin, CrudViewSet):
    """Items (Personalize's items: TITLE, GENRES, PLOT, …), by the tenant's own `external_id`; PUT on the collection
    upserts up to 10,000 by external_id."""

    @upsert_docs(
        "items",
        ItemUpsertSerializer,
        {"external_id": "m1", "title": "Heat", "year": 1995, "genres": ["Crime", "Drama"]},
    )
    def upsert(self, request, *args, **kwargs):
        return super().upsert(request, *args, **kwargs)

    scope_model = Item
    serializer_class = ItemSerializer
    filterset_class = ItemFilter
    lookup_field = "external_id"
    lookup_value_regex = EXTERNAL_ID
    upsert_row = ItemUpsertRowSerializer

    def upsert_rows(self, checked: Checked) -> UpsertResult:
        return items_upsert(tenant=self.tenant, checked=checked)


@crud_docs("interaction", "interactions")
class InteractionViewSet(
    UpsertMixin, mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):
    """Interactions (USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE); stored once, never changed. PUT on the collection
    upserts up to 10,000, each identified by (contact, item, event type, timestamp): one already stored is
    unchanged."""

    @upsert_docs(
        "interactions",
        InteractionUpsertSerializer,
        {"contact": "u1", "item": "m1", "event_type": "watch", "timestamp": "2026-06-01T10:00:00Z"},
    )
    def upsert(self, request, *args, **kwargs):
        return super().upsert(request, *args, **kwargs)

    scope_model = Interaction
    upsert_row = InteractionUpsertRowSerializer
    upsert_partial = False
    serializer_class = InteractionSerializer
    filterset_class = InteractionFilter
    scope_select_related = ("contact", "item")
    parser_classes = PARSERS

    @extend_schema(
        summary="Record one interaction, or a list of up to 1,000",
        request=OneOrMany(InteractionSerializer(), name="InteractionOneOrMany", max_items=MAX_BULK),
        responses={
            201: OpenApiResponse(InteractionSerializer, "One interaction, stored."),
            207: OpenApiResponse(InteractionBulkSerializer, "A list: the good rows stored, the bad ones by index."),
            409: OpenApiResponse(ErrorSerializer, "One interaction that is already stored (`details.duplicate_of`)."),
        },
        examples=[
            OpenApiExample(
                "one",
                request_only=True,
                value={"contact": "u0", "item": "m1", "event_type": "watch", "timestamp": "2026-06-01T10:00:00Z"},
            ),
            OpenApiExample(
                "bulk answer",
                response_only=True,
                status_codes=["207"],
                value={
                    "created": 1,
                    "rejected": 1,
                    "ids": [41],
                    "errors": [{"index": 1, "errors": {"contact": ["Object with external_id=nobody does not exist."]}}],
                },
            ),
        ],  # fmt: skip
    )
    def create(self, request, *args, **kwargs):
        """One interaction (201), or a list of up to 1,000 (207: bad rows and duplicates are reported by their index
        and the good ones kept, even when none is). One duplicate alone is a 409 naming the stored row."""
        if not isinstance(request.data, list):
            serializer = self.get_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            if duplicate_of := self._store(serializer):
                raise Conflict(DUPLICATE, duplicate_of=duplicate_of)
            return Response(serializer.data, status.HTTP_201_CREATED)
        if len(request.data) > MAX_BULK:
            raise ValidationError([f"at most {MAX_BULK} interactions per request"])
        ids, errors = [], []
        for index, row in enumerate(request.data):
            serializer = self.get_serializer(data=row)
            if not serializer.is_valid():
                errors.append({"index": index, "errors": serializer.errors})
            elif duplicate_of := self._store(serializer):
                errors.append({"index": index, "errors": {"detail": DUPLICATE}, "duplicate_of": duplicate_of})
            else:
                ids.append(serializer.instance.pk)
        return Response({"created": len(ids), "rejected": len(errors), "ids": ids, "errors": errors}, status=207)

    def upsert_rows(self, checked: Checked) -> UpsertResult:
        return interactions_upsert(tenant=self.tenant, checked=checked)

    def _store(self, serializer) -> int | None:
        """Save the interaction, or return the id of the same event already stored (also one a concurrent request
        stored a moment ago: the unique constraint has the last word)."""
        data = serializer.validated_data
        event_type = data.get("event_type", Interaction._meta.get_field("event_type").default)
        same = Interaction.objects.for_tenant(self.tenant).filter(
            contact=data["contact"], item=data["item"], timestamp=data["timestamp"], event_type=event_type
        )
        if stored := same.values_list("pk", flat=True).first():
            return stored
        try:
            with transaction.atomic():
                serializer.save()
        except IntegrityError:
            if stored := same.values_list("pk", flat=True).first():
                return stored
            raise
        return None


@crud_docs("suppressed address", "suppressed addresses")
class SuppressionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's suppression list: read it (?reason= narrows it; an unknown reason is a 400), add one address or a list of up to 1,000
    (an import: bad rows reported by their index, the good ones kept, those already there named). Never changed
    or removed here: an unsubscribe is lifted by re-subscribing the contact, with its consent."""

    scope_model = Suppression
    serializer_class = SuppressionSerializer
    filterset_class = SuppressionFilter
    list_ordering = ("-at", "-pk")
    parser_classes = PARSERS

    @extend_schema(
        summary="Suppress one address, or a list of up to 1,000",
        request=OneOrMany(SuppressionAddSerializer(), name="SuppressionOneOrMany", max_items=MAX_BULK, strings=True),
        responses={
            200: OpenApiResponse(SuppressionSerializer, "One address that was already suppressed."),
            201: OpenApiResponse(SuppressionSerializer, "One address, now suppressed."),
            207: OpenApiResponse(SuppressionBulkSerializer, "A list: added, already there, and bad rows by index."),
        },
        examples=[
            OpenApiExample("one", request_only=True, value={"address": "pat@example.com", "reason": "hard_bounce"}),
            OpenApiExample("list", request_only=True, value=["pat@example.com", {"address": "lee@example.com"}]),
        ],
    )
    def create(self, request, *args, **kwargs):
        rows = request.data if isinstance(request.data, list) else None
        if rows is not None and len(rows) > MAX_BULK:
            raise ValidationError([f"at most {MAX_BULK} addresses per request"])
        as_objects = [
            row if isinstance(row, dict) else {"address": row} for row in (rows if rows is not None else [request.data])
        ]
        checked = rows_check(SuppressionAddSerializer(), as_objects)
        added, refused = self._suppress(checked.good)
        problems = sorted([*checked.bad, *refused], key=lambda problem: problem.index)
        if rows is None:
            if problems:
                raise ValidationError(problems[0].fields)
            row = Suppression.objects.for_tenant(self.tenant).get(address=checked.good[0][1]["address"])
            return Response(self.get_serializer(row).data, status.HTTP_201_CREATED if added[0] else status.HTTP_200_OK)
        addresses = [(data["address"], added[index]) for index, data in checked.good if index in added]
        return Response({
            "added": [address for address, new in addresses if new],
            "already": [address for address, new in addresses if not new],
            "errors": [{"row": problem.index, "error": problem.text()} for problem in problems],
        }, status=207)  # fmt: skip

    def _suppress(self, rows: list[tuple[int, dict]]) -> tuple[dict[int, bool], list[RowProblem]]:
        """Suppress each (index, data), a thousand to a transaction: {index: True when newly added} for the rows the
        database took, and the rows it refused."""
        added = {}

        def write(part):
            outcomes = {index: address_suppress(tenant_id=self.tenant.pk, address=data["address"],
                                                reason=data["reason"], source="api", by=str(self.request.user),
                                                note=data["note"]) for index, data in part}  # fmt: skip
            added.update(outcomes)  # only once the whole chunk has gone through

        return added, rows_write(write, rows)
