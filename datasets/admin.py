"""Admin pages for contacts, items and interactions, scoped to the user's tenants. A contact's consent is read-only
here: the action unsubscribes on record, and its history is listed on the contact's page."""

from django import forms
from django.contrib import admin

from datasets.consent import contacts_unsubscribe
from datasets.models import ConsentEvent, ConsentSource, Contact, Interaction, Item, Suppression, SuppressionReason
from datasets.suppression import address_normal
from tenants.admin import TenantScopedAdmin, tenant_action
from tenants.roles import Capability

CONSENT_FIELDS = ("subscribed", "source", "actor", "note", "at")


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    fields = readonly_fields = CONSENT_FIELDS
    extra = 0
    can_delete = False
    verbose_name_plural = "consent history"

    def has_view_permission(self, request, obj=None):
        # As the contact's own page (TenantScopedAdmin): staff of the tenant, without per-model permissions.
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(TenantScopedAdmin):
    list_display = ("external_id", "email", "first_name", "last_name", "age", "locale", "unsubscribed", "tenant")
    list_filter = ("tenant", "unsubscribed", "locale")
    search_fields = ("external_id", "email", "first_name", "last_name")
    readonly_fields = ("unsubscribed", "unsubscribed_at")
    inlines = [ConsentEventInline]
    actions = ["unsubscribe_selected"]

    @tenant_action(
        Capability.CHANGE_DATA, description="Unsubscribe the selected contacts (recorded in their consent history)"
    )
    def unsubscribe_selected(self, request, queryset):
        changed = 0
        for tenant_id in set(queryset.values_list("tenant_id", flat=True)):
            ids = queryset.filter(tenant_id=tenant_id).values_list("pk", flat=True)
            by = f"admin:{request.user.get_username()}"
            changed += len(
                contacts_unsubscribe(tenant_id=tenant_id, contact_ids=ids, source=ConsentSource.ADMIN, by=by)
            )
        self.message_user(request, f"{changed} contact(s) unsubscribed; the others already were.")


@admin.register(ConsentEvent)
class ConsentEventAdmin(TenantScopedAdmin):
    """A record, not a setting: nobody adds or edits one by hand (it goes only with its contact)."""

    list_display = ("contact", "subscribed", "source", "actor", "at", "tenant")
    list_filter = ("tenant", "source", "subscribed")
    list_select_related = ("contact", "tenant")
    readonly_fields = ("tenant", "contact", *CONSENT_FIELDS)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SuppressionForm(forms.ModelForm):
    address = forms.EmailField(max_length=254)
    reason = forms.ChoiceField(choices=[(SuppressionReason.MANUAL, "Added by hand"),
                                        (SuppressionReason.HARD_BOUNCE, "Hard bounce"),
                                        (SuppressionReason.COMPLAINT, "Complaint")])  # fmt: skip

    class Meta:
        model = Suppression
        fields = ("tenant", "address", "reason", "note")

    def clean_address(self):
        return address_normal(self.cleaned_data["address"])

    def clean(self):
        data = super().clean()
        tenant, address = data.get("tenant"), data.get("address")
        if tenant and address and Suppression.objects.for_tenant(tenant).filter(address=address).exists():
            self.add_error("address", f"{address} is already on the suppression list")
        return data


@admin.register(Suppression)
class SuppressionAdmin(TenantScopedAdmin):
    """Addresses the tenant never emails. Added here by hand (or by unsubscribes, bounces, complaints and imports);
    a row is a record: it is not edited, and an unsubscribe is lifted only by re-subscribing the contact, with the
    consent it rests on."""

    form = SuppressionForm
    list_display = ("address", "reason", "source", "actor", "at", "tenant")
    list_filter = ("tenant", "reason", "source")
    search_fields = ("address", "note")

    def get_readonly_fields(self, request, obj=None):
        return ("tenant", "address", "reason", "source", "actor", "note", "at") if obj else ()

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        obj.source, obj.actor = "admin", f"admin:{request.user.get_username()}"
        super().save_model(request, obj, form, change)


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
