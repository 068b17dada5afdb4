"""A tenant's webhook endpoints, each event delivered to them, and every attempt at a delivery (status, latency,
what went wrong), so a CRM developer can see why a delivery did not arrive."""

import base64
import secrets

from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwned


class EventType(models.TextChoices):
    # Labels are the names a receiver switches on.
    RUN_COMPLETED = "run.completed", "run.completed"
    EMAIL_GENERATED = "email.generated", "email.generated"  # batched: one event per chunk of written drafts
    EMAIL_APPROVED = "email.approved", "email.approved"
    EMAIL_SENT = "email.sent", "email.sent"
    EMAIL_FAILED = "email.failed", "email.failed"
    CONTACT_UNSUBSCRIBED = "contact.unsubscribed", "contact.unsubscribed"
    PING = "webhook.ping", "webhook.ping"  # sent on request, to try an endpoint


def new_secret() -> str:
    """Standard Webhooks' form: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookEndpoint(TenantOwned):
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, blank=True, help_text="Event types to deliver; empty: all of them.")
    secret = models.CharField(max_length=100, default=new_secret, help_text="Signs every delivery (HMAC-SHA256).")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="The first failed attempt since a success.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "enabled"])]

    def __str__(self):
        return self.url if len(self.url) <= 60 else self.url[:59] + "…"

    def wants(self, event_type: str) -> bool:
        return event_type == EventType.PING or not self.events or event_type in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # an attempt is under way (claimed_at)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt failed, or the endpoint was disabled


class WebhookDelivery(TenantOwned):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    message_id = models.CharField(max_length=40, unique=True, help_text="webhook-id: the same on every retry.")
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.event_type} → {self.endpoint_id} [{self.status}]"


class WebhookAttempt(TenantOwned):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
