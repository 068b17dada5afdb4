"""Admin pages: templates, campaigns (launch), runs (progress, send) and the review screen for emails."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction

from campaigns import services, tasks
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, InvalidTransition, PromptTemplate
from tenants.admin import TenantScopedAdmin


@admin.register(PromptTemplate)
class PromptTemplateAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "updated_at")


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "n_items", "review_required", "created_at")
    actions = ["launch"]

    @admin.action(description="Launch a run of the selected campaigns")
    def launch(self, request, queryset):
        for campaign in queryset:
            try:
                run = services.campaign_launch(campaign=campaign)
            except services.CampaignError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: run #{run.pk} queued for {run.total} contacts")


@admin.register(CampaignRun)
class CampaignRunAdmin(TenantScopedAdmin):
    list_display = ("pk", "campaign", "status", "progress", "failed", "input_tokens", "output_tokens", "cost_usd",
                    "started_at", "finished_at")  # fmt: skip
    list_filter = ("tenant", "status")
    readonly_fields = [f.name for f in CampaignRun._meta.fields]
    actions = ["send_approved", "cancel"]

    @admin.action(description="Cancel the selected runs")
    def cancel(self, request, queryset):
        cancelled = sum(services.run_cancel(run=run) for run in queryset)
        self.message_user(request, f"cancelled {cancelled} run(s)")

    @admin.display(description="done / total")
    def progress(self, run):
        return f"{run.processed} / {run.total}"

    @admin.action(description="Send the approved emails of the selected runs")
    def send_approved(self, request, queryset):
        for run in queryset:
            transaction.on_commit(lambda run=run: tasks.send_run.delay(run.pk, run.tenant_id))
        self.message_user(request, f"sending approved emails of {queryset.count()} run(s)")


class ReviewForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[("", "keep as it is"), ("approve", "approve"), ("reject", "reject")], required=False
    )
    reason = forms.CharField(required=False, help_text="Why it is rejected.")

    class Meta:
        model = GeneratedEmail
        fields = ["subject", "body"]


@admin.register(GeneratedEmail)
class GeneratedEmailAdmin(TenantScopedAdmin):
    form = ReviewForm
    list_display = ("pk", "contact", "subject", "status", "model_key", "input_tokens", "output_tokens", "run")
    list_filter = ("tenant", "status", "run")
    list_select_related = ("contact", "run__campaign")
    search_fields = ("subject", "contact__email")
    readonly_fields = ("run", "contact", "status", "items", "favorite_genre", "failure_reason", "reject_reason",
                       "model_key", "route_reason", "attempts", "input_tokens", "output_tokens", "cost_usd",
                       "latency_ms", "reviewed_by", "reviewed_at", "sent_at", "message_id", "prompt")  # fmt: skip
    actions = ["approve", "regenerate", "send_now"]

    @admin.action(description="Regenerate selected failed, rejected or draft emails")
    def regenerate(self, request, queryset):
        for email in queryset.select_related("run__campaign", "run__tenant", "contact"):
            try:
                services.email_regenerate(email=email)
            except InvalidTransition as exc:
                self.message_user(request, str(exc), messages.WARNING)

    def save_model(self, request, obj, form, change):
        """Edits and decisions go through the model's conditional transitions, never a blind save."""
        decision, by = form.cleaned_data.get("decision"), str(request.user)
        edited = {"subject", "body"} & set(form.changed_data)
        try:
            if decision == "reject":
                obj.reject(by=by, reason=form.cleaned_data.get("reason") or "")
            elif edited:
                obj.edit_and_approve(by=by, subject=obj.subject, body=obj.body)
            elif decision == "approve":
                obj.approve(by=by)
        except (InvalidTransition, ValidationError) as exc:
            self.message_user(request, f"not saved: {exc}", messages.ERROR)

    @admin.action(description="Approve selected drafts")
    def approve(self, request, queryset):
        approved = 0
        for email in queryset.filter(status=EmailStatus.DRAFT):
            try:
                email.approve(by=str(request.user))
                approved += 1
            except InvalidTransition:
                pass
        self.message_user(request, f"approved {approved} email(s)")

    @admin.action(description="Send selected approved emails now")
    def send_now(self, request, queryset):
        for email in queryset.filter(status=EmailStatus.APPROVED):
            transaction.on_commit(lambda email=email: tasks.send_email.delay(email.pk, email.tenant_id))
        self.message_user(request, "sending")
