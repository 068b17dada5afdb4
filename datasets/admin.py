"""Admin pages for contacts, items and interactions, scoped to the user's tenants. A contact's consent is read-only
here: the action unsubscribes on record, and its history is listed on the contact's page."""

import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from datasets.consent import contacts_unsubscribe
from datasets.csvfile import max_bytes
from datasets.importers import import_suppressions
from datasets.models import ConsentEvent, ConsentSource, Contact, Interaction, Item, Suppression, SuppressionReason
from datasets.suppression import address_normal
from tenants.admin import TenantScopedAdmin, capable_tenant_ids, tenant_action
from tenants.models import Tenant
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


class SuppressionImportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), empty_label=None)
    file = forms.FileField(help_text="CSV with a header: EMAIL, and optionally REASON (unsubscribed, hard_bounce, "
                           "complaint; blank: imported) and NOTE.")  # fmt: skip

    def __init__(self, *args, tenant_ids, **kwargs):
        super().__init__(*args, **kwargs)
        tenants = Tenant.objects.order_by("name")
        self.fields["tenant"].queryset = tenants if tenant_ids is None else tenants.filter(pk__in=tenant_ids)
        if tenant_ids and len(tenant_ids) == 1:
            self.fields["tenant"].initial = tenant_ids[0]

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > max_bytes():
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; the limit is {max_bytes():,} bytes: split it."
            )
        return upload


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

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="datasets_suppression_import"), *super().get_urls()]

    def import_view(self, request):
        """Upload a suppression file (another platform's export, a list of the tenant's own) into one of the tenants
        where the user's role changes data; the report lists every row refused and why, the good rows landed."""
        tenant_ids = capable_tenant_ids(request.user, Capability.CHANGE_DATA)
        if tenant_ids == []:
            raise PermissionDenied("your role does not change data in this tenant")
        form = SuppressionImportForm(request.POST or None, request.FILES or None, tenant_ids=tenant_ids)
        report = None
        if request.method == "POST" and form.is_valid():
            upload, tenant = form.cleaned_data["file"], form.cleaned_data["tenant"]
            with tempfile.TemporaryDirectory() as folder:
                target = Path(folder) / (Path(upload.name).name or "upload.csv")
                with open(target, "wb") as out:
                    for chunk in upload.chunks():
                        out.write(chunk)
                report = import_suppressions(target, tenant=tenant, by=f"admin:{request.user.get_username()}")
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form, "report": report,
                   "title": "Import a suppression file", "shown": 50}  # fmt: skip
        return TemplateResponse(request, "admin/datasets/suppression/import.html", context)


@admin.register(Item)
class ItemAdmin(TenantScopedAdmin):
    list_display = ("external_id", "title", "year", "promotion", "tenant")
    list_filter = ("tenant", "promotion")
    search_fields = ("external_id", "title")
    exclude = ("short_plot_claim", "short_plot_claimed_until")  # a chunk's, while it shortens the plot: plumbing


@admin.register(Interaction)
class InteractionAdmin(TenantScopedAdmin):
    list_display = ("contact", "item", "event_type", "timestamp", "tenant")
    list_select_related = ("contact", "item", "tenant")
    raw_id_fields = ("contact", "item")
