"""Admin page for LLM usage records."""

from django.contrib import admin

from routing.models import LLMCall
from tenants.admin import ReadOnly, TenantScopedAdmin


@admin.register(LLMCall)
class LLMCallAdmin(ReadOnly, TenantScopedAdmin):
    list_display = (
        "created_at",
        "tenant",
        "task",
        "model_key",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "ok",
    )
    list_filter = ("tenant", "model_key", "ok")
    readonly_fields = [f.name for f in LLMCall._meta.fields]
