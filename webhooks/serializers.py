"""API representations of webhook endpoints and their deliveries."""

from rest_framework import serializers

from saas.rows import ApiModelSerializer
from tenants.serializers import TenantModelSerializer
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import url_problem

SUBSCRIBABLE = [value for value in EventType.values if value != EventType.PING]
MAX_ENDPOINTS = 20  # per tenant


class WebhookEndpointSerializer(TenantModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE), required=False, max_length=len(SUBSCRIBABLE),
        help_text="Event types to deliver; empty or absent: all of them.",
    )  # fmt: skip
    secret_hint = serializers.SerializerMethodField(help_text="The secret's first characters, to tell keys apart.")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "enabled", "disabled_reason", "secret_hint",
                  "consecutive_failures", "failing_since", "created_at"]  # fmt: skip
        read_only_fields = ["enabled", "disabled_reason", "consecutive_failures", "failing_since", "created_at"]

    def get_secret_hint(self, endpoint) -> str:
        return endpoint.secret[:10] + "…"

    def validate_url(self, url: str) -> str:
        if problem := url_problem(url):
            raise serializers.ValidationError(problem)
        return url

    def validate_events(self, events: list[str]) -> list[str]:
        return sorted(set(events))

    def validate(self, attrs):
        attrs = super().validate(attrs)
        tenant = self.context["tenant"]
        if self.instance is None and WebhookEndpoint.objects.for_tenant(tenant).count() >= MAX_ENDPOINTS:
            raise serializers.ValidationError(f"at most {MAX_ENDPOINTS} endpoints per tenant: remove one first")
        return attrs


class WebhookEndpointSecretSerializer(WebhookEndpointSerializer):
    """As created, or after a rotation: the only answers that show the whole secret."""

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookEndpointSerializer.Meta.read_only_fields, "secret"]


class WebhookAttemptSerializer(ApiModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["at", "status_code", "latency_ms", "error"]


class WebhookDeliverySerializer(ApiModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_type", "message_id", "status", "attempts", "next_attempt_at", "last_status_code",
                  "last_error", "created_at", "delivered_at", "payload", "attempt_log"]  # fmt: skip
