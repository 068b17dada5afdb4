"""Admin pages: a tenant's webhook endpoints (ping, enable), and their deliveries and attempts (read only)."""

from django import forms
from django.contrib import admin, messages
from django.db import models

from tenants.admin import TenantScopedAdmin, Untouchable, tenant_action
from tenants.roles import Capability
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import endpoint_enable, endpoint_ping


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(value, value) for value in EventType.values if value != EventType.PING], required=False,
        widget=forms.CheckboxSelectMultiple, help_text="None ticked: every event.",
    )  # fmt: skip

    class Meta:
        model = WebhookEndpoint
        fields = ("tenant", "url", "description", "events", "enabled")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "enabled", "events", "consecutive_failures", "disabled_reason", "tenant")
    list_filter = ("tenant", "enabled")
    search_fields = ("url", "description")
    readonly_fields = ("secret", "disabled_reason", "failing_since", "consecutive_failures", "created_at")
    actions = ["ping_selected", "enable_selected"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # a URL typed without one is https

    @tenant_action(Capability.CHANGE_DATA, description="Send a ping to the selected endpoints")
    def ping_selected(self, request, queryset):
        sent = [endpoint_ping(endpoint) for endpoint in queryset.filter(enabled=True)]
        self.message_user(request, f"{len(sent)} ping(s) queued; see their deliveries.", messages.SUCCESS)

    @tenant_action(Capability.CHANGE_DATA, description="Enable the selected endpoints again")
    def enable_selected(self, request, queryset):
        for endpoint in queryset:
            endpoint_enable(endpoint)
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled.", messages.SUCCESS)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = readonly_fields = ("at", "status_code", "latency_ms", "error")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(Untouchable, TenantScopedAdmin):
    list_display = (
        "created_at",
        "event_type",
        "status",
        "attempts",
        "last_answer",
        "next_attempt",
        "endpoint",
        "tenant",
    )
    list_filter = ("tenant", "status", "event_type")
    list_select_related = ("endpoint", "tenant")
    search_fields = ("message_id", "endpoint__url")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]

    @admin.display(description="last answer")
    def last_answer(self, delivery):
        said = delivery.last_error or (str(delivery.last_status_code) if delivery.last_status_code else "–")
        return said if len(said) <= 70 else said[:69] + "…"

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, delivery):
        return delivery.next_attempt_at if delivery.status == "pending" else "–"


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(Untouchable, TenantScopedAdmin):
    list_display = ("at", "status_code", "latency_ms", "error", "delivery", "tenant")
    list_filter = ("tenant",)
    list_select_related = ("delivery", "tenant")
    readonly_fields = [f.name for f in WebhookAttempt._meta.fields]
