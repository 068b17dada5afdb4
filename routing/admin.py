"""Admin pages for routing: the catalog and plans and the override log (platform staff only: superusers), and the
LLM usage records (each tenant's own)."""

from django.contrib import admin

from routing.models import (
    DynamicRoute,
    LLMCall,
    ModelEntry,
    OverrideChange,
    Plan,
    PlanRoute,
    ReferencePrompt,
    SpendHold,
    SpendUsage,
)
from tenants.admin import ReadOnly, TenantScopedAdmin


class PlatformAdmin(admin.ModelAdmin):
    """Platform-wide data (what every tenant is routed to and charged): superusers only. A tenant's members, staff
    or not, never see these pages: the module is not in their index and every view is a 403."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)


@admin.register(ModelEntry)
class ModelEntryAdmin(PlatformAdmin):
    list_display = ("key", "provider", "tier", "input_per_1k", "output_per_1k", "supports_batch", "enabled")
    list_filter = ("provider", "tier", "enabled")
    search_fields = ("key", "model_id")


class PlanRouteInline(admin.TabularInline):
    model = PlanRoute
    fk_name = "plan"
    extra = 0


class DynamicRouteInline(admin.TabularInline):
    """Dynamic routing's model per label (Pro plans): a label without a row takes the plan's route."""

    model = DynamicRoute
    fk_name = "plan"
    extra = 0


@admin.register(Plan)
class PlanAdmin(PlatformAdmin):
    list_display = ("slug", "name", "tier", "monthly_email_quota", "monthly_budget_usd")
    inlines = [PlanRouteInline]  # dynamic routes on their own page (a second inline would change this form)

    def get_readonly_fields(self, request, obj=None):
        # Tenant.plan holds the slug: renaming it would leave its tenants on no plan.
        return ("slug",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        from tenants.models import Tenant

        in_use = obj is not None and Tenant.objects.filter(plan=obj.slug).exists()
        return super().has_delete_permission(request, obj) and not in_use

    def get_actions(self, request):
        # Bulk delete does not ask about each plan: a plan is deleted from its own page, where the check above runs.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(PlanRoute)
class PlanRouteAdmin(PlatformAdmin):
    list_display = ("plan", "backend", "task", "model", "fallback", "max_output_tokens")
    list_filter = ("plan", "backend")


@admin.register(DynamicRoute)
class DynamicRouteAdmin(PlatformAdmin):
    list_display = ("plan", "backend", "label", "model", "fallback")
    list_filter = ("plan", "backend", "label")


@admin.register(ReferencePrompt)
class ReferencePromptAdmin(PlatformAdmin):
    """The semantic router's reference set: each worker rebuilds its index within 30 s of a change."""

    list_display = ("label", "text", "enabled", "updated_at")
    list_filter = ("label", "enabled")
    search_fields = ("text",)


@admin.register(OverrideChange)
class OverrideChangeAdmin(ReadOnly, PlatformAdmin):
    list_display = ("changed_at", "tenant", "changed_by", "before", "after", "reason")
    readonly_fields = ("tenant", "before", "after", "changed_by", "reason", "changed_at")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SpendUsage)
class SpendUsageAdmin(ReadOnly, PlatformAdmin):
    """Each tenant's model spend per month: written only by the budget's reservations and settlements."""

    list_display = ("tenant", "month", "spent_usd", "reserved_usd")
    readonly_fields = ("tenant", "month", "spent_usd", "reserved_usd")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SpendHold)
class SpendHoldAdmin(ReadOnly, PlatformAdmin):
    """Reservations in flight, each counted in its month's reserved dollars until settled or expired."""

    list_display = ("tenant", "month", "amount_usd", "expires_at")
    readonly_fields = ("tenant", "month", "amount_usd", "expires_at")

    def has_delete_permission(self, request, obj=None):
        return False


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
        "strategy",
        "route_label",
        "ok",
    )
    list_filter = ("tenant", "model_key", "strategy", "ok")
    readonly_fields = [f.name for f in LLMCall._meta.fields]
