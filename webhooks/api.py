"""REST endpoints for a tenant's webhook endpoints: register (the answer shows the signing secret once), change,
remove, rotate the secret, send a ping, enable one that was disabled, and read its deliveries with every attempt."""

from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from datasets.api import PARSERS, Pages
from tenants.api import TenantScopedViewSet
from webhooks.models import WebhookDelivery, WebhookEndpoint, new_secret
from webhooks.serializers import (
    WebhookDeliverySerializer,
    WebhookEndpointSecretSerializer,
    WebhookEndpointSerializer,
)
from webhooks.services import endpoint_enable, endpoint_ping


class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, TenantScopedViewSet,
):  # fmt: skip
    scope_model = WebhookEndpoint
    serializer_class = WebhookEndpointSerializer
    parser_classes = PARSERS
    pagination_class = Pages

    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = body.save()
        return Response(WebhookEndpointSecretSerializer(endpoint, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)  # fmt: skip

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new signing secret, shown in this answer only; deliveries from now on are signed with it."""
        endpoint = self.get_object()
        endpoint.secret = new_secret()
        endpoint.save(update_fields=["secret"])
        return Response(WebhookEndpointSecretSerializer(endpoint, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        """Deliver to a disabled endpoint again (after fixing it); its failure count starts afresh."""
        endpoint = self.get_object()
        endpoint_enable(endpoint)
        return Response(self.get_serializer(endpoint).data)

    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        """Queue a `webhook.ping` delivery, to try the endpoint; 202 with the delivery to follow."""
        endpoint = self.get_object()
        if not endpoint.enabled:
            return Response({"detail": "this endpoint is disabled: enable it first"}, status.HTTP_409_CONFLICT)
        delivery = endpoint_ping(endpoint)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The endpoint's deliveries, newest first, each with its attempts (status code, latency, error)."""
        endpoint = self.get_object()
        rows = WebhookDelivery.objects.for_tenant(self.tenant).filter(endpoint=endpoint).prefetch_related("attempt_log")
        wanted = request.query_params.get("status")
        if wanted:
            rows = rows.filter(status=wanted[:10])
        page = self.paginate_queryset(rows.order_by("-created_at", "-pk"))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
