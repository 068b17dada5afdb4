"""Admin page for trained recommender versions."""

from django.contrib import admin

from recommendations.models import RecommenderModel
from tenants.admin import TenantScopedAdmin


@admin.register(RecommenderModel)
class RecommenderModelAdmin(TenantScopedAdmin):
    list_display = ("tenant", "version", "n_interactions", "n_contacts", "n_items", "training_seconds", "created_at")
    exclude = ("blob",)
    readonly_fields = ("version", "n_interactions", "n_contacts", "n_items", "training_seconds", "params")
