"""Admin pages for trained recommender versions and each tenant's recommender settings."""

from django.contrib import admin

from recommendations.models import RecommenderConfig, RecommenderModel
from tenants.admin import ReadOnly, TenantScopedAdmin


@admin.register(RecommenderModel)
class RecommenderModelAdmin(ReadOnly, TenantScopedAdmin):
    list_display = ("tenant", "version", "n_interactions", "n_contacts", "n_items", "training_seconds", "created_at")
    exclude = ("blob",)
    readonly_fields = (
        "version", "n_interactions", "last_interaction_id", "n_contacts", "n_items", "training_seconds", "params",
    )  # fmt: skip


@admin.register(RecommenderConfig)
class RecommenderConfigAdmin(TenantScopedAdmin):
    list_display = ("tenant", "event_weights", "history_half_life", "popularity_half_life_days", "retrain_nightly")
