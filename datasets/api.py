"""REST endpoints for the tenant's contacts, items and interactions, and the recorded consent actions."""

from django.db import IntegrityError, transaction
from rest_framework import mixins, parsers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from datasets.consent import contact_resubscribe, contact_unsubscribe
from datasets.models import ConsentSource, Contact, Interaction, Item, Suppression
from datasets.serializers import (
    ConsentEventSerializer,
    ConsentNoteSerializer,
    ContactSerializer,
    InteractionSerializer,
    ItemSerializer,
    ResubscribeSerializer,
    SuppressionAddSerializer,
    SuppressionSerializer,
)
from datasets.suppression import address_suppress
from tenants.api import TenantScopedViewSet

MAX_BULK = 1000
DUPLICATE = "this interaction is already stored"
EXTERNAL_ID = r"[^/.\x00]+"  # PostgreSQL cannot look up a text holding NUL: such a URL is simply not found


class JSONParser(parsers.JSONParser):
    """DRF's parser answers a ValueError with 400; a document nested past Python's recursion limit gets the same."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None


PARSERS = [JSONParser, parsers.FormParser, parsers.MultiPartParser]


class Pages(LimitOffsetPagination):
    max_limit = 1000  # without one, ?limit=10**23 reaches PostgreSQL and overflows its bigint: a 500


class CrudViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, TenantScopedViewSet,
):  # fmt: skip
    parser_classes = PARSERS
    pagination_class = Pages


class ContactViewSet(CrudViewSet):
    scope_model = Contact
    serializer_class = ContactSerializer
    lookup_field = "external_id"
    lookup_value_regex = EXTERNAL_ID

    @action(detail=True, methods=["post"])
    def unsubscribe(self, request, external_id=None):
        """Unsubscribe on record (optional "note"); a contact already out stays out and nothing new is written."""
        contact, note = self.get_object(), ConsentNoteSerializer(data=request.data)
        note.is_valid(raise_exception=True)
        reason = note.validated_data.get("note", "")
        contact_unsubscribe(contact=contact, source=ConsentSource.API, by=str(request.user), note=reason)
        return Response(self.get_serializer(contact).data)

    @action(detail=True, methods=["post"])
    def resubscribe(self, request, external_id=None):
        """Only with "consent": how and when the contact opted in again, kept with the change."""
        contact, body = self.get_object(), ResubscribeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        consent = body.validated_data["consent"]
        contact_resubscribe(contact=contact, source=ConsentSource.API, by=str(request.user), consent=consent)
        return Response(self.get_serializer(contact).data)

    @action(detail=True, methods=["get"])
    def consent(self, request, external_id=None):
        """Every consent change of the contact, oldest first."""
        events = self.get_object().consent_events.order_by("at", "pk")
        return Response(ConsentEventSerializer(events, many=True).data)


class ItemViewSet(CrudViewSet):
    scope_model = Item
    serializer_class = ItemSerializer
    lookup_field = "external_id"
    lookup_value_regex = EXTERNAL_ID


class InteractionViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):
    scope_model = Interaction
    serializer_class = InteractionSerializer
    scope_select_related = ("contact", "item")
    parser_classes = PARSERS
    pagination_class = Pages

    def create(self, request, *args, **kwargs):
        """One interaction, or a list of up to 1,000; in a list, bad rows and duplicates are reported per row and
        the good ones kept. A duplicate alone is a 409 naming the stored row."""
        if not isinstance(request.data, list):
            serializer = self.get_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            if duplicate_of := self._store(serializer):
                return Response({"detail": DUPLICATE, "duplicate_of": duplicate_of}, status.HTTP_409_CONFLICT)
            return Response(serializer.data, status.HTTP_201_CREATED)
        if len(request.data) > MAX_BULK:
            return Response({"detail": f"at most {MAX_BULK} interactions per request"}, status.HTTP_400_BAD_REQUEST)
        ids, errors = [], []
        for index, row in enumerate(request.data):
            serializer = self.get_serializer(data=row)
            if not serializer.is_valid():
                errors.append({"index": index, "errors": serializer.errors})
            elif duplicate_of := self._store(serializer):
                errors.append({"index": index, "errors": {"detail": DUPLICATE}, "duplicate_of": duplicate_of})
            else:
                ids.append(serializer.instance.pk)
        code = status.HTTP_201_CREATED if ids else status.HTTP_400_BAD_REQUEST
        return Response({"created": len(ids), "rejected": len(errors), "ids": ids, "errors": errors}, status=code)

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


class SuppressionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's suppression list: read it (?reason= narrows it), add one address or a list of up to 1,000
    (an import: bad rows reported by their index, the good ones kept, those already there named). Never changed
    or removed here: an unsubscribe is lifted by re-subscribing the contact, with its consent."""

    scope_model = Suppression
    serializer_class = SuppressionSerializer
    list_ordering = ("-at", "-pk")
    parser_classes = PARSERS
    pagination_class = Pages

    def filter_queryset(self, queryset):
        reason = self.request.query_params.get("reason")
        return queryset.filter(reason=reason[:20]) if reason else queryset

    def create(self, request, *args, **kwargs):
        rows = request.data if isinstance(request.data, list) else None
        if rows is not None and len(rows) > MAX_BULK:
            return Response({"detail": f"at most {MAX_BULK} addresses per request"}, status.HTTP_400_BAD_REQUEST)
        added, already, errors = [], [], []
        for index, row in enumerate(rows if rows is not None else [request.data]):
            body = SuppressionAddSerializer(data=row if isinstance(row, dict) else {"address": row})
            if not body.is_valid():
                if rows is None:
                    return Response(body.errors, status.HTTP_400_BAD_REQUEST)
                said = "; ".join(f"{name}: {' '.join(map(str, why))}" for name, why in body.errors.items())
                errors.append({"row": index, "error": said})
                continue
            data = body.validated_data
            new = address_suppress(tenant_id=self.tenant.pk, address=data["address"], reason=data["reason"],
                                   source="api", by=str(request.user), note=data["note"])  # fmt: skip
            (added if new else already).append(data["address"])
        if rows is not None:
            return Response({"added": added, "already": already, "errors": errors}, status=207)
        row = Suppression.objects.for_tenant(self.tenant).get(address=(added or already)[0])
        return Response(self.get_serializer(row).data, status.HTTP_201_CREATED if added else status.HTTP_200_OK)
