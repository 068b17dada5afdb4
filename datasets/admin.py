"""Admin pages for contacts, items and interactions, scoped to the user's tenants."""

from django.contrib import admin

from datasets.models import Contact, Interaction, Item
from tenants.admin import TenantScopedAdmin


@admin.register(Contact)
class ContactAdmin(TenantScopedAdmin):
    list_display = ("external_id", "email", "first_name", "last_name", "age", "locale", "unsubscribed", "tenant")
    list_filter = ("tenant", "unsubscribed", "locale")
    search_fields = ("external_id", "email", "first_name", "last_name")


@admin.register(Item)
class ItemAdmin(TenantScopedAdmin):
    list_display = ("external_id", "title", "year", "promotion", "tenant")
    list_filter = ("tenant", "promotion")
    search_fields = ("external_id", "title")


@admin.register(Interaction)
class InteractionAdmin(TenantScopedAdmin):
    list_display = ("contact", "item", "event_type", "timestamp", "tenant")
    list_select_related = ("contact", "item", "tenant")
    raw_id_fields = ("contact", "item")
