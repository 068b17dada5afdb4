"""Admin pages: templates, campaigns (launch), runs (progress, send) and the review screen for emails."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import PeriodicTask

from campaigns import services, tasks
from campaigns.models import (
    BatchRecord,
    Campaign,
    CampaignRun,
    CampaignTick,
    EmailStatus,
    GeneratedEmail,
    InvalidTransition,
    PromptTemplate,
)
from campaigns.progress import done_text, eta_text, rate_text
from campaigns.serializers import CampaignRunSerializer
from tenants.admin import TenantScopedAdmin, Untouchable, WrittenByTheProduct, tenant_action, user_tenant_ids
from tenants.roles import Capability


@admin.register(PromptTemplate)
class PromptTemplateAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "updated_at")


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "n_items", "review_required", "created_at")
    actions = ["launch"]

    @tenant_action(Capability.RUN, description="Launch a run of the selected campaigns")
    def launch(self, request, queryset):
        for campaign in queryset:
            try:
                run = services.campaign_launch(campaign=campaign)
            except services.CampaignError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: run #{run.pk} queued for {run.total} contacts")


@admin.register(CampaignTick)
class CampaignTickAdmin(Untouchable, TenantScopedAdmin):
    """What each firing of a campaign's schedule did: launched a run, skipped (a run was still active, or the
    schedule paused) or failed, and why. A record: read, never edited or removed by hand."""

    list_display = ("at", "campaign", "outcome", "run", "detail", "tenant")
    list_filter = ("tenant", "outcome", "campaign")
    list_select_related = ("campaign", "run", "tenant")
    readonly_fields = [f.name for f in CampaignTick._meta.fields]

    def get_list_filter(self, request):
        # The campaign filter offers only the user's tenants' campaigns (Django's would list every tenant's).
        return [f for f in super().get_list_filter(request) if f != "campaign"] + [("campaign", CampaignsOfMine)]


class CampaignsOfMine(admin.RelatedFieldListFilter):
    def field_choices(self, field, request, model_admin):
        ids = user_tenant_ids(request.user)
        campaigns = Campaign.dangerously_unscoped.order_by("name")
        campaigns = campaigns if ids is None else campaigns.filter(tenant_id__in=ids)
        return [(c.pk, str(c)) for c in campaigns]


# The run change page's live panel shows these and keeps them current; listed again below it, they would go stale.
LIVE_FIELDS = ("status", "generated", "failed", "input_tokens", "output_tokens", "cost_usd", "progress_at",
               "rate_per_s", "eta_at")  # fmt: skip


@admin.register(CampaignRun)
class CampaignRunAdmin(WrittenByTheProduct, TenantScopedAdmin):
    list_display = ("pk", "campaign", "status", "progress", "failed", "input_tokens", "output_tokens", "cost_usd",
                    "started_at", "finished_at")  # fmt: skip
    list_filter = ("tenant", "status")
    list_select_related = ("campaign",)
    readonly_fields = [f.name for f in CampaignRun._meta.fields]
    fields = [name for name in readonly_fields if name not in LIVE_FIELDS]
    actions = ["send_approved", "cancel"]
    change_capability = Capability.RUN  # nothing on its page is edited; the run is the marketer's

    @tenant_action(Capability.RUN, description="Cancel the selected runs")
    def cancel(self, request, queryset):
        cancelled = sum(services.run_cancel(run=run) for run in queryset)
        self.message_user(request, f"cancelled {cancelled} run(s)")

    @admin.display(description="progress")
    def progress(self, run):
        return format_html(
            '<progress max="{}" value="{}" style="width:10em"></progress><br>{} · {} · ETA {}',
            max(run.total, 1), run.processed, done_text(run), rate_text(run), eta_text(run),
        )  # fmt: skip

    progress_url_name = "campaigns_campaignrun_progress"

    def get_urls(self):
        # Before the defaults: their "<object_id>/" catch-all would swallow "<object_id>/progress/".
        view = self.admin_site.admin_view(self.progress_view)
        return [path("<path:object_id>/progress/", view, name=self.progress_url_name), *super().get_urls()]

    def progress_view(self, request, object_id):
        """The run's progress as JSON, polled by its change page; another tenant's run is not there (404)."""
        run = self.get_object(request, unquote(object_id))
        if run is None or not self.has_view_permission(request, run):
            raise Http404
        return JsonResponse(progress_figures(run))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            url = reverse(f"{self.admin_site.name}:{self.progress_url_name}", args=[obj.pk])
            context.update(progress=progress_figures(obj), progress_url=url)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @tenant_action(Capability.RUN, description="Send the approved emails of the selected runs")
    def send_approved(self, request, queryset):
        for run in queryset:
            transaction.on_commit(lambda run=run: tasks.run_send_approved.delay(run.pk, run.tenant_id))
        self.message_user(request, f"sending approved emails of {queryset.count()} run(s)")


def progress_figures(run: CampaignRun) -> dict:
    """The API's view of the run plus the same words the list and the terminal use for rate and ETA."""
    updated = timezone.localtime(run.progress_at).strftime("%H:%M:%S") if run.progress_at else "-"
    return {**CampaignRunSerializer(run).data, "active": run.is_active, "done_text": done_text(run),
            "rate_text": rate_text(run), "eta_text": eta_text(run), "updated_text": updated}  # fmt: skip


class ReviewForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[("", "keep as it is"), ("approve", "approve"), ("reject", "reject")], required=False
    )
    reason = forms.CharField(required=False, help_text="Why it is rejected.")

    class Meta:
        model = GeneratedEmail
        fields = ["subject", "body"]


@admin.register(GeneratedEmail)
class GeneratedEmailAdmin(WrittenByTheProduct, TenantScopedAdmin):
    form = ReviewForm
    list_display = ("pk", "contact", "subject", "status", "model_key", "input_tokens", "output_tokens", "run")
    list_filter = ("tenant", "status", "run")
    list_select_related = ("contact", "run__campaign")
    search_fields = ("subject", "contact__email")
    readonly_fields = ("run", "contact", "status", "items", "favorite_genre", "failure_reason", "reject_reason",
                       "model_key", "route_reason", "attempts", "input_tokens", "output_tokens", "cost_usd",
                       "latency_ms", "reviewed_by", "reviewed_at", "send_claimed_at", "sent_at", "message_id",
                       "send_error", "send_resolved_by", "send_resolved_at", "prompt")  # fmt: skip
    actions = ["approve", "regenerate", "send_now", "mark_sent", "send_again"]
    change_capability = Capability.REVIEW  # its page is the review screen: edit, approve, reject

    @tenant_action(Capability.REVIEW, description="Regenerate selected failed, rejected or draft emails")
    def regenerate(self, request, queryset):
        """Queued, not written here: each email is rewritten by a task, and shows as regenerating until then."""
        queued = 0
        for email in queryset.select_related("tenant"):
            try:
                services.email_regenerate_request(email=email)
                queued += 1
            except (InvalidTransition, services.CampaignError) as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"queued {queued} email(s) for regeneration")

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

    @tenant_action(Capability.REVIEW, description="Approve selected drafts")
    def approve(self, request, queryset):
        approved = 0
        for email in queryset.filter(status=EmailStatus.DRAFT):
            try:
                email.approve(by=str(request.user))
                approved += 1
            except InvalidTransition:
                pass
        self.message_user(request, f"approved {approved} email(s)")

    @tenant_action(Capability.RUN, description="Send selected approved emails now")
    def send_now(self, request, queryset):
        for email in queryset.filter(status=EmailStatus.APPROVED):
            transaction.on_commit(lambda email=email: tasks.email_send.delay(email.pk, email.tenant_id))
        self.message_user(request, "sending")

    @tenant_action(
        Capability.RUN, description="Mark selected 'send unknown' emails as sent (you checked that they arrived)"
    )
    def mark_sent(self, request, queryset):
        marked = self._resolve(request, queryset, lambda email: email.mark_sent(by=str(request.user)))
        self.message_user(request, f"marked {marked} email(s) as sent")

    @tenant_action(Capability.RUN, description="Send selected 'send unknown' or 'send failed' emails again")
    def send_again(self, request, queryset):
        def again(email):
            email.send_again(by=str(request.user))
            transaction.on_commit(lambda: tasks.email_send.delay(email.pk, email.tenant_id))

        self.message_user(request, f"sending {self._resolve(request, queryset, again)} email(s) again")

    def _resolve(self, request, queryset, change) -> int:
        done = 0
        for email in queryset.filter(status__in=(EmailStatus.SEND_UNKNOWN, EmailStatus.SEND_FAILED)):
            try:
                change(email)
                done += 1
            except InvalidTransition as exc:
                self.message_user(request, str(exc), messages.WARNING)
        return done


@admin.register(BatchRecord)
class BatchRecordAdmin(Untouchable, TenantScopedAdmin):
    """Prompts waiting in a run's Bedrock batch job: read-only, gone once their emails are stored. Deleting one
    would leave its contact without an email and the run running for ever; the job's answers are matched to them."""

    list_display = ("run", "contact", "tenant")
    list_select_related = ("run__campaign", "contact", "tenant")
    readonly_fields = [f.name for f in BatchRecord._meta.fields]


class PeriodicTaskForm(beat_admin.PeriodicTaskForm):
    """django-celery-beat's form reads cleaned_data["task"] unguarded: a task name that failed its own checks
    (too long, say) was a 500 instead of that field's error."""

    def clean(self):
        if "task" in self.errors:
            return self.cleaned_data
        return super().clean()


class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
    form = PeriodicTaskForm


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PeriodicTaskAdmin)
