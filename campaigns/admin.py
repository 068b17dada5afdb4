"""Admin pages: templates, campaigns (launch), runs (progress, send) and the review screen for emails."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import PeriodicTask

from campaigns import desk, schedules, sending, services, tasks
from campaigns.audiences import AudienceError, audience_check, audience_describe
from campaigns.models import (
    BatchRecord,
    Campaign,
    CampaignRun,
    CampaignTick,
    DeliveryReport,
    EmailEvent,
    EmailStatus,
    GeneratedEmail,
    InvalidTransition,
    PromptTemplate,
)
from campaigns.preview import campaign_preview
from campaigns.progress import done_text, eta_text, rate_text
from campaigns.schedules import MAX_EVERY, PERIODS
from campaigns.serializers import CampaignRunSerializer
from campaigns.subject_test import subject_test_report
from datasets.models import Contact
from routing.errors import ProviderError
from tenants.admin import (
    ReadOnly,
    TenantScopedAdmin,
    Untouchable,
    WrittenByTheProduct,
    tenant_action,
    user_can,
    user_tenant_ids,
)
from tenants.roles import Capability
from tenants.scoping import tenant_scope


@admin.register(PromptTemplate)
class PromptTemplateAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "updated_at", "new_campaign")

    @admin.display(description="")
    def new_campaign(self, template):
        url = reverse("admin:campaigns_campaign_add") + f"?template={template.pk}&tenant={template.tenant_id}"
        return format_html('<a class="button" href="{}">New campaign from this template</a>', url)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["audience"]  # CampaignAdmin.fields names the rest (a foreign key here would query at import)

    def clean_audience(self):
        try:
            return audience_check(self.cleaned_data.get("audience"))
        except AudienceError as exc:
            raise ValidationError(str(exc)) from exc

    def clean(self):
        """The API's rule here too: a live run's run-shaping fields stay as they were (Campaign.change_refused)."""
        cleaned = super().clean()
        if self.instance.pk is not None and (refused := self.instance.change_refused(cleaned)):
            raise ValidationError(refused[0].upper() + refused[1:] + ".")
        return cleaned


class ScheduleForm(forms.Form):
    kind = forms.ChoiceField(choices=[("interval", "every N"), ("cron", "cron")], initial="interval")
    every = forms.IntegerField(min_value=1, max_value=MAX_EVERY, required=False, initial=1)
    period = forms.ChoiceField(choices=[(p, p) for p in PERIODS], initial="days", required=False)
    cron = forms.CharField(
        max_length=100, required=False, initial="0 9 * * 1", help_text="minute hour day month weekday"
    )
    timezone = forms.CharField(max_length=50, required=False, initial="UTC")


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    form = CampaignForm
    fields = ("tenant", "name", "template", "goal", "audience", "n_items", "review_required", "subject_variants",
              "subject_mode", "task", "include_genres",
              "exclude_genres", "max_maturity", "maturity_by_age", "skip_emailed_days", "promotion_share")  # fmt: skip
    list_display = ("name", "tenant", "audience_text", "schedule_text", "n_items", "review_required", "created_at")
    actions = ["launch"]
    change_form_template = "admin/campaigns/campaign/change_form.html"
    RUNS_SHOWN, TICKS_SHOWN, CONTACTS_OFFERED = 10, 10, 300

    @admin.display(description="audience")
    def audience_text(self, campaign):
        try:
            return audience_describe(campaign.audience)
        except AudienceError as exc:
            return f"invalid: {exc}"

    @admin.display(description="schedule")
    def schedule_text(self, campaign):
        schedule = schedules.campaign_schedule_get(campaign=campaign)
        return str(schedule) if schedule else "-"

    @tenant_action(Capability.RUN, description="Launch a run of the selected campaigns")
    def launch(self, request, queryset):
        for campaign in queryset:
            try:
                run = services.campaign_launch(campaign=campaign)
            except services.CampaignError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: run #{run.pk} queued for {run.total} contacts")

    def get_urls(self):
        # Before the defaults: their "<object_id>/" catch-all would swallow these.
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/preview/", wrap(self.preview_view), name="campaigns_campaign_preview"),
            path("<path:object_id>/do/<slug:what>/", wrap(self.do_view), name="campaigns_campaign_do"),
            *super().get_urls(),
        ]

    def _campaign(self, request, object_id) -> Campaign:
        """The campaign, if the user's tenants have it: another tenant's (or a missing) id is a 404."""
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404
        return campaign

    def _may_launch(self, request, campaign) -> bool:
        return user_can(request.user, Capability.RUN, campaign.tenant_id)

    def preview_view(self, request, object_id):
        """The campaign's email for a contact of its tenant, written by the tenant's model; no run is created.
        Spending model calls is running the campaign: the marketer's, not the reviewer's."""
        campaign = self._campaign(request, object_id)
        if not self._may_launch(request, campaign):
            raise PermissionDenied
        contacts = Contact.dangerously_unscoped.filter(tenant_id=campaign.tenant_id)
        chosen, preview, problem = None, None, ""
        raw = request.GET.get("contact", "").strip()
        if raw:
            if not raw.isdigit():
                raise Http404
            chosen = contacts.filter(pk=int(raw)).first()
            if chosen is None:  # another tenant's contact, or none: not there
                raise Http404
            try:
                preview = campaign_preview(campaign=campaign, contact=chosen)
            except ProviderError as exc:
                problem = f"the model could not be reached: {exc.message}"
        try:
            offered = list(services.audience(campaign)[: self.CONTACTS_OFFERED])
        except services.CampaignError as exc:
            offered, problem = list(contacts.order_by("pk")[: self.CONTACTS_OFFERED]), problem or str(exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": campaign,
            "campaign": campaign,
            "title": f"Preview of {campaign}",
            "contacts": offered,
            "chosen": chosen,
            "preview": preview,
            "problem": problem,
            "change_url": reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/preview.html", context)

    def do_view(self, request, object_id, what):
        """The buttons of the campaign page: launch, schedule, pause, resume, unschedule (POST, marketers only)."""
        campaign = self._campaign(request, object_id)
        if what not in ("launch", "schedule", "pause", "resume", "unschedule"):
            raise Http404
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._may_launch(request, campaign):
            raise PermissionDenied
        back = HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        with tenant_scope(campaign.tenant):
            if what == "launch":
                try:
                    run = services.campaign_launch(campaign=campaign)
                except services.CampaignError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    self.message_user(request, f"run #{run.pk} queued for {run.total} contacts")
            elif what == "schedule":
                self._schedule(request, campaign)
            elif what in ("pause", "resume"):
                change = schedules.campaign_pause if what == "pause" else schedules.campaign_resume
                if change(campaign=campaign):
                    self.message_user(request, f"schedule {'paused' if what == 'pause' else 'resumed'}")
                else:
                    self.message_user(request, "this campaign has no schedule", messages.ERROR)
            elif schedules.campaign_unschedule(campaign=campaign):
                self.message_user(request, "schedule removed")
        return back

    def _schedule(self, request, campaign) -> None:
        form = ScheduleForm(request.POST)
        if not form.is_valid():
            said = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
            self.message_user(request, f"schedule not saved: {said}", messages.ERROR)
            return
        data = form.cleaned_data
        try:
            if data["kind"] == "cron":
                schedules.campaign_schedule(
                    campaign=campaign, cron=data["cron"], timezone_name=data["timezone"] or "UTC"
                )
            else:
                if data["every"] is None:
                    raise services.CampaignError("an interval needs 'every': how many minutes, hours or days")
                schedules.campaign_schedule(campaign=campaign, every=data["every"], period=data["period"] or "days")
        except services.CampaignError as exc:
            self.message_user(request, f"schedule not saved: {exc}", messages.ERROR)
            return
        self.message_user(request, f"scheduled: {schedules.campaign_schedule_get(campaign=campaign)}")

    @staticmethod
    def subject_test_shown(campaign, run=None) -> dict | None:
        """The subject test for the campaign's page (or one run's), its rates as percentages; None when the campaign
        has no variants."""
        report = subject_test_report(campaign=campaign, run=run)
        report["run_id"] = run.pk if run is not None else None
        if not report["arms"] and campaign.subject_variants <= 1:
            return None
        for arm in report["arms"]:
            for name in ("open_rate", "click_rate"):
                arm[f"{name}_text"] = "-" if arm[name] is None else f"{arm[name]:.1%}"
            arm["more_subjects"] = max(arm["subject_count"] - len(arm["subjects"]), 0)
        return report

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            runs = CampaignRun.dangerously_unscoped.filter(tenant_id=obj.tenant_id, campaign=obj)
            ticks = CampaignTick.dangerously_unscoped.filter(tenant_id=obj.tenant_id, campaign=obj)
            context.update(
                campaign_desk=True,
                may_run=self._may_launch(request, obj),
                schedule=schedules.campaign_schedule_get(campaign=obj),
                schedule_form=ScheduleForm(),
                audience_text=self.audience_text(obj),
                runs=[
                    {
                        "run": run,
                        "progress": progress_figures(run),
                        "url": reverse("admin:campaigns_campaignrun_change", args=[run.pk]),
                        "progress_url": reverse("admin:campaigns_campaignrun_progress", args=[run.pk]),
                        "desk_url": reverse("admin:campaigns_generatedemail_desk") + f"?run={run.pk}",
                    }
                    for run in runs.annotate(
                        drafts=Count("emails", filter=Q(emails__status=EmailStatus.DRAFT))
                    ).order_by("-created_at", "-pk")[: self.RUNS_SHOWN]
                ],  # fmt: skip
                runs_count=runs.count(),
                runs_url=reverse("admin:campaigns_campaignrun_changelist"),
                ticks=list(ticks.select_related("run").order_by("-at", "-pk")[: self.TICKS_SHOWN]),
                ticks_url=reverse("admin:campaigns_campaigntick_changelist") + f"?campaign__id__exact={obj.pk}",
                preview_url=reverse("admin:campaigns_campaign_preview", args=[obj.pk]),
                subject_test=self.subject_test_shown(obj),
                do_url=reverse("admin:campaigns_campaign_do", args=[obj.pk, "launch"]).rsplit("launch/", 1)[0],
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


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
class CampaignRunAdmin(ReadOnly, TenantScopedAdmin):
    list_display = ("pk", "campaign", "status", "progress", "failed", "input_tokens", "output_tokens", "cost_usd",
                    "started_at", "finished_at")  # fmt: skip
    list_filter = ("tenant", "status")
    list_select_related = ("campaign",)
    readonly_fields = [f.name for f in CampaignRun._meta.fields]
    fields = [name for name in readonly_fields if name not in LIVE_FIELDS]
    actions = ["send_approved", "cancel"]
    # Nothing on its page is edited (no Save button); its actions (send, cancel) are the marketer's.

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
            context.update(progress=progress_figures(obj), progress_url=url,
                           subject_test=CampaignAdmin.subject_test_shown(obj.campaign, run=obj))  # fmt: skip
        return super().render_change_form(request, context, add, change, form_url, obj)

    @tenant_action(Capability.RUN, description="Send the approved emails of the selected runs")
    def send_approved(self, request, queryset):
        queued = 0
        for run in queryset:
            queued += sending.run_send_request(run=run)
            transaction.on_commit(lambda run=run: tasks.run_send_approved.delay(run.pk, run.tenant_id))
        self.message_user(request, f"queued {queued} approved email(s) of {queryset.count()} run(s) for sending")


def progress_figures(run: CampaignRun) -> dict:
    """The API's view of the run plus the same words the list and the terminal use for rate and ETA."""
    updated = timezone.localtime(run.progress_at).strftime("%H:%M:%S") if run.progress_at else "-"
    data = CampaignRunSerializer(run).data
    return {**data, "active": run.is_active, "done_text": done_text(run), "rate_text": rate_text(run),
            "eta_text": eta_text(run), "updated_text": updated,
            "sending_text": sending.send_states_text(data["sending"])}  # fmt: skip


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
    list_display = ("pk", "contact", "subject", "status", "model_key", "tokens", "cost", "run_short")
    list_filter = ("tenant", "status", "run")
    list_select_related = ("contact", "run__campaign")
    search_fields = ("subject", "contact__email")
    readonly_fields = ("run", "contact", "status", "items", "favorite_genre", "failure_reason", "reject_reason",
                       "model_key", "route_reason", "attempts", "input_tokens", "output_tokens", "cost_usd",
                       "latency_ms", "reviewed_by", "reviewed_at", "send_claimed_at", "sent_at", "message_id",
                       "send_after", "send_error", "send_resolved_by", "send_resolved_at", "prompt", "original_subject",
                       "original_body", "feedback", "checks", "screened")  # fmt: skip
    actions = ["approve", "regenerate", "send_now", "mark_sent", "send_again"]

    @admin.display(description="tokens in / out")
    def tokens(self, email):
        return f"{email.input_tokens:,} / {email.output_tokens:,}"

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, email):
        return f"{email.cost_usd:.4f}"

    @admin.display(description="run", ordering="run_id")
    def run_short(self, email):
        return f"#{email.run_id} {email.run.campaign.name}"

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

    def get_urls(self):
        wrap = self.admin_site.admin_view

        def bound(view):
            return wrap(lambda request, *args, **kwargs: view(self, request, *args, **kwargs))

        return [
            path("desk/", bound(desk.desk_view), name="campaigns_generatedemail_desk"),
            path("desk/queue/", bound(desk.queue_view), name="campaigns_generatedemail_desk_queue"),
            path("desk/cards/", bound(desk.cards_view), name="campaigns_generatedemail_desk_cards"),
            path("desk/bulk/", bound(desk.bulk_view), name="campaigns_generatedemail_desk_bulk"),
            path("desk/<str:object_id>/decide/", bound(desk.decide_view), name="campaigns_generatedemail_desk_decide"),
            *super().get_urls(),
        ]

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
        approved = queryset.filter(status=EmailStatus.APPROVED)
        queued = sending.emails_send_request(emails=approved)
        for email in approved:
            transaction.on_commit(lambda email=email: tasks.email_send.delay(email.pk, email.tenant_id))
        self.message_user(request, f"queued {queued} email(s) for sending")

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


@admin.register(EmailEvent)
class EmailEventAdmin(Untouchable, TenantScopedAdmin):
    """The audit log: who decided what on which email, and each step of its sending. Never edited or removed."""

    list_display = ("at", "kind", "actor", "status", "email_link", "tenant")
    list_filter = ("tenant", "kind")
    list_select_related = ("email", "tenant")
    search_fields = ("actor", "email__subject", "email__contact__email")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in EmailEvent._meta.fields]

    @admin.display(description="email", ordering="email")
    def email_link(self, event):
        url = reverse("admin:campaigns_generatedemail_change", args=[event.email_id])
        return format_html('<a href="{}">#{}</a>', url, event.email_id)


@admin.register(DeliveryReport)
class DeliveryReportAdmin(Untouchable, TenantScopedAdmin):
    """What providers reported after taking a message (delivered, bounces, complaints): a record, read only."""

    list_display = ("at", "kind", "address", "provider", "email_link", "tenant")
    list_filter = ("tenant", "kind", "provider")
    list_select_related = ("tenant",)
    search_fields = ("address", "message_id")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in DeliveryReport._meta.fields]

    @admin.display(description="email", ordering="email")
    def email_link(self, report):
        if report.email_id is None:
            return "—"
        url = reverse("admin:campaigns_generatedemail_change", args=[report.email_id])
        return format_html('<a href="{}">#{}</a>', url, report.email_id)


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
