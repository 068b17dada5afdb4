"""REST endpoints for a tenant's webhook endpoints: register (the answer shows the signing secret once), change,
remove, rotate the secret, send a ping, enable one that was disabled, and read its deliveries with every attempt."""

import django_filters
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from datasets.api import PARSERS
from saas.api_errors import Conflict
from tenants.api import TenantScopedViewSet
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, new_secret
from webhooks.serializers import (
    WebhookDeliverySerializer,
    WebhookEndpointSecretSerializer,
    WebhookEndpointSerializer,
)
from webhooks.services import endpoint_enable, endpoint_ping


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices, help_text="Only deliveries in this state.")

    class Meta:
        model = WebhookDelivery
        fields = []


@extend_schema_view(
    list=extend_schema(summary="Your webhook endpoints"),
    retrieve=extend_schema(summary="One endpoint (its secret is never shown again; see rotate-secret)"),
    update=extend_schema(summary="Change an endpoint's URL, description or events"),
    partial_update=extend_schema(summary="Change some of an endpoint's fields"),
    destroy=extend_schema(summary="Remove an endpoint and its delivery log"),
)
class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, TenantScopedViewSet,
):  # fmt: skip
    scope_model = WebhookEndpoint
    serializer_class = WebhookEndpointSerializer
    parser_classes = PARSERS
    paginated_actions = ("deliveries",)

    @extend_schema(
        summary="Register an endpoint; the answer shows its signing secret, once",
        responses={201: WebhookEndpointSecretSerializer},
        examples=[OpenApiExample("CRM", request_only=True, value={
            "url": "https://crm.example.com/hooks/campaigns", "events": ["email.sent", "run.completed"]})],
    )  # fmt: skip
    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = body.save()
        return Response(WebhookEndpointSecretSerializer(endpoint, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)  # fmt: skip

    @extend_schema(summary="A new signing secret, shown once", request=None,
                   responses={200: WebhookEndpointSecretSerializer})  # fmt: skip
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new signing secret, shown in this answer only; deliveries from now on are signed with it."""
        endpoint = self.get_object()
        endpoint.secret = new_secret()
        endpoint.save(update_fields=["secret"])
        return Response(WebhookEndpointSecretSerializer(endpoint, context=self.get_serializer_context()).data)

    @extend_schema(summary="Deliver to a disabled endpoint again", request=None,
                   responses={200: WebhookEndpointSerializer})  # fmt: skip
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        """Deliver to a disabled endpoint again (after fixing it); its failure count starts afresh."""
        endpoint = self.get_object()
        endpoint_enable(endpoint)
        return Response(self.get_serializer(endpoint).data)

    @extend_schema(summary="Send a webhook.ping delivery to try the endpoint", request=None,
                   responses={202: OpenApiResponse(WebhookDeliverySerializer, "The delivery, queued.")})  # fmt: skip
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        """Queue a `webhook.ping` delivery, to try the endpoint; 202 with the delivery to follow."""
        endpoint = self.get_object()
        if not endpoint.enabled:
            raise Conflict("this endpoint is disabled: enable it first", disabled_reason=endpoint.disabled_reason)
        delivery = endpoint_ping(endpoint)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="The endpoint's deliveries, newest first, each with its attempts",
                   responses={200: WebhookDeliverySerializer(many=True)},
                   parameters=[OpenApiParameter("status", enum=DeliveryStatus.values,
                                                description="Only deliveries in this state.")])  # fmt: skip
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The endpoint's deliveries, newest first, each with its attempts (status code, latency, error);
        `?status=` narrows them."""
        endpoint = self.get_object()
        rows = WebhookDelivery.objects.for_tenant(self.tenant).filter(endpoint=endpoint).prefetch_related("attempt_log")
        found = DeliveryFilter(request.query_params, queryset=rows)
        if not found.is_valid():
            raise ValidationError(found.errors)
        page = self.paginate_queryset(found.qs.order_by("-created_at", "-pk"))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
