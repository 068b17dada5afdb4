"""REST endpoints for the tenant's contacts, items and interactions."""

from rest_framework import mixins, status
from rest_framework.response import Response

from datasets.models import Contact, Interaction, Item
from datasets.serializers import ContactSerializer, InteractionSerializer, ItemSerializer
from tenants.api import TenantScopedViewSet

MAX_BULK = 1000


class CrudViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, TenantScopedViewSet,
):  # fmt: skip
    pass


class ContactViewSet(CrudViewSet):
    scope_model = Contact
    serializer_class = ContactSerializer
    lookup_field = "external_id"


class ItemViewSet(CrudViewSet):
    scope_model = Item
    serializer_class = ItemSerializer
    lookup_field = "external_id"


class InteractionViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):
    scope_model = Interaction
    serializer_class = InteractionSerializer
    scope_select_related = ("contact", "item")

    def create(self, request, *args, **kwargs):
        """One interaction, or a list of up to 1,000; in a list, bad rows are reported and good ones kept."""
        if not isinstance(request.data, list):
            return super().create(request, *args, **kwargs)
        if len(request.data) > MAX_BULK:
            return Response({"detail": f"at most {MAX_BULK} interactions per request"}, status.HTTP_400_BAD_REQUEST)
        created, errors = 0, []
        for index, row in enumerate(request.data):
            serializer = self.get_serializer(data=row)
            if serializer.is_valid():
                serializer.save()
                created += 1
            else:
                errors.append({"index": index, "errors": serializer.errors})
        code = status.HTTP_201_CREATED if created else status.HTTP_400_BAD_REQUEST
        return Response({"created": created, "rejected": len(errors), "errors": errors}, status=code)
