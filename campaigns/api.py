"""REST endpoints for prompt templates, campaigns (launch, schedule, cancel, preview), runs (send, cancel) and emails
(review, send one, test-send)."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from campaigns import schedules, sending, services, tasks
from campaigns.filters import CampaignFilter, CampaignRunFilter, GeneratedEmailFilter, PromptTemplateFilter
from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignTick,
    EmailStatus,
    GeneratedEmail,
    InvalidTransition,
    PromptTemplate,
)
from campaigns.preview import campaign_preview
from campaigns.serializers import (
    CampaignCancelSerializer,
    CampaignRunSerializer,
    CampaignSerializer,
    CampaignTickSerializer,
    EditSerializer,
    GeneratedEmailSerializer,
    LaunchSerializer,
    PreviewRequestSerializer,
    PreviewSerializer,
    PromptTemplateSerializer,
    RegenerateSerializer,
    RejectSerializer,
    RunSendSerializer,
    ScheduleSerializer,
    ScheduleStateSerializer,
    SubjectPickSerializer,
    SubjectTestSerializer,
    TestSendSerializer,
    TestSentSerializer,
)  # fmt: skip
from campaigns.subject_test import subject_test_report
from datasets.api import CrudViewSet, crud_docs
from datasets.models import Contact
from routing.errors import ProviderError
from saas.api_errors import Conflict, UpstreamError
from saas.schema import ErrorSerializer
from tenants.api import TenantScopedViewSet
from tenants.roles import Capability

NO_SCHEDULE = "this campaign has no schedule"
SUBJECT_TEST_EXAMPLE = {
    "campaign": 12, "run": None, "mode": "ab", "variants": 2, "rate_base": "delivered", "min_per_arm": 100,
    "alpha": 0.05, "without_variants": 3,
    "arms": [
        {"variant": 0, "label": "A", "subjects": ["Ana, your weekend picks", "Ben, your weekend picks"],
         "subject_count": 1180, "emails": 1204, "sent": 1190, "delivered": 1176, "opened": 412, "clicked": 61,
         "open_rate": 0.35034, "click_rate": 0.051871, "edited": 4, "picked": None},
        {"variant": 1, "label": "B", "subjects": ["Three films for Saturday, Ana", "Three films for Saturday, Ben"],
         "subject_count": 1175, "emails": 1199, "sent": 1188, "delivered": 1170, "opened": 338, "clicked": 58,
         "open_rate": 0.288889, "click_rate": 0.049573, "edited": 2, "picked": None},
    ],
    "opens": {"verdict": "winner", "best": 0, "p_value": 0.001417, "p_values": {"1": 0.001417},
              "detail": "variant A wins with 35.0% opens per delivered email, ahead of B (p = 0.0014)"},
    "clicks": {"verdict": "no_winner", "best": 0, "p_value": 0.799784, "p_values": {"1": 0.799784},
               "detail": "no clear winner yet: variant A leads with 5.2% clicks per delivered email, but its lead over "
               "B (p = 0.8) could be chance"},
}  # fmt: skip
SUBJECT_TEST_DOCS = {
    "responses": {200: SubjectTestSerializer},
    "examples": [OpenApiExample("an A/B test with a winner on opens", value=SUBJECT_TEST_EXAMPLE, response_only=True)],
}
SCHEDULE_EXAMPLES = [
    OpenApiExample("weekly", value={"cron": "0 9 * * 1", "timezone": "Europe/Paris"}, request_only=True),
    OpenApiExample("every two hours", value={"every": 2, "period": "hours"}, request_only=True),
]


def no_schedule(detail: str = "No schedule, or no such campaign in your tenant.") -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, detail)


@crud_docs("prompt template", "prompt templates")
class PromptTemplateViewSet(CrudViewSet):
    """Prompt templates (Jinja2, sandboxed and checked on save)."""

    scope_model = PromptTemplate
    filterset_class = PromptTemplateFilter
    serializer_class = PromptTemplateSerializer


@crud_docs("campaign", "campaigns")
class CampaignViewSet(CrudViewSet):
    """Campaigns: what to recommend and how to write it; launched now or on a schedule."""

    scope_model = Campaign
    filterset_class = CampaignFilter
    serializer_class = CampaignSerializer
    # A preview spends model calls: running the campaign, the marketer's (as in the admin).
    action_capabilities = dict.fromkeys(("launch", "schedule", "pause", "resume", "cancel", "preview"), Capability.RUN)
    paginated_actions = ("ticks",)

    @extend_schema(responses={200: CampaignSerializer, 409: OpenApiResponse(ErrorSerializer,
                   "A run of the campaign is active: the fields that shape what it writes may not change.")})  # fmt: skip
    def update(self, request, *args, **kwargs):
        """The name and the send window may change any time; what shapes the emails (template, goal, audience,
        n_items, review_required, task, genres, maturity, skip_emailed_days, promotion_share) not while a run is
        active (409): cancel the run, or wait for it to end."""
        return super().update(request, *args, **kwargs)

    @extend_schema(responses={200: CampaignSerializer, 409: OpenApiResponse(ErrorSerializer,
                   "A run of the campaign is active: the fields that shape what it writes may not change.")})  # fmt: skip
    def partial_update(self, request, *args, **kwargs):
        """As the full update: a field that shapes what a run writes may not change while one is active (409)."""
        return super().partial_update(request, *args, **kwargs)

    def perform_update(self, serializer):
        refused = serializer.instance.change_refused(serializer.validated_data)
        if refused:
            run = serializer.instance.active_run()
            raise Conflict(refused, run=run.pk if run else None)
        serializer.save()

    @extend_schema(
        summary="Launch a run of the campaign now",
        request=LaunchSerializer,
        responses={
            202: CampaignRunSerializer,
            409: OpenApiResponse(
                ErrorSerializer, "The campaign already has an active run, or the month's quota is used up."
            ),
        },  # fmt: skip
        examples=[OpenApiExample("at most 500 contacts", value={"limit": 500}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        """Queue a run for the campaign's audience (at most `limit` contacts): 202 with the run, which a client
        follows at /api/v1/runs/{id}/. The run's size is reserved from the tenant's monthly quota."""
        campaign = self.get_object()
        params = LaunchSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            run = services.campaign_launch(campaign=campaign, limit=params.validated_data.get("limit"))
        except services.CampaignError as exc:
            raise Conflict(str(exc)) from exc
        return Response(CampaignRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["GET"], summary="The campaign's schedule",
                   responses={200: ScheduleStateSerializer, 404: no_schedule()})  # fmt: skip
    @extend_schema(methods=["POST"], summary="Schedule the campaign (cron or interval), replacing its schedule",
                   request=ScheduleSerializer, responses={201: ScheduleStateSerializer}, examples=SCHEDULE_EXAMPLES)  # fmt: skip
    @extend_schema(methods=["DELETE"], summary="Remove the campaign's schedule for good",
                   responses={204: None, 404: no_schedule()})  # fmt: skip
    @action(detail=True, methods=["get", "post", "delete"])
    def schedule(self, request, pk=None):
        """GET the schedule; POST {"cron": "0 9 * * 1", "timezone": "Europe/Paris"} or {"every": 2, "period":
        "hours"} launches the campaign on that schedule (replacing one it has); DELETE stops it for good."""
        campaign = self.get_object()
        if request.method == "GET":
            current = schedules.campaign_schedule_get(campaign=campaign)
            if current is None:
                raise NotFound(NO_SCHEDULE)
            return Response(current.as_dict())
        if request.method == "DELETE":
            if not schedules.campaign_unschedule(campaign=campaign):
                raise NotFound(NO_SCHEDULE)
            return Response(status=status.HTTP_204_NO_CONTENT)
        params = ScheduleSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            if "cron" in data:
                schedules.campaign_schedule(campaign=campaign, cron=data["cron"], timezone_name=data["timezone"])
            else:
                schedules.campaign_schedule(campaign=campaign, every=data["every"], period=data["period"])
        except services.CampaignError as exc:
            raise serializers.ValidationError({"cron" if "cron" in data else "every": str(exc)}) from exc
        current = schedules.campaign_schedule_get(campaign=campaign)
        return Response(current.as_dict(), status=status.HTTP_201_CREATED)

    def _pause_or_resume(self, change) -> Response:
        campaign = self.get_object()
        if not change(campaign=campaign):
            raise NotFound(NO_SCHEDULE)
        return Response(schedules.campaign_schedule_get(campaign=campaign).as_dict())

    @extend_schema(summary="Pause the campaign's schedule", request=None,
                   responses={200: ScheduleStateSerializer, 404: no_schedule()})  # fmt: skip
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Stop the schedule's ticks, keeping the schedule."""
        return self._pause_or_resume(schedules.campaign_pause)

    @extend_schema(summary="Resume the campaign's paused schedule", request=None,
                   responses={200: ScheduleStateSerializer, 404: no_schedule()})  # fmt: skip
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Let the schedule tick again."""
        return self._pause_or_resume(schedules.campaign_resume)

    @extend_schema(summary="Cancel the campaign: stop its active run and pause its schedule", request=None,
                   responses={200: CampaignCancelSerializer, 409: OpenApiResponse(ErrorSerializer,
                              "Nothing to cancel: no active run and no schedule ticking.")})  # fmt: skip
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop everything the campaign has in motion: its active run (what is written stays, nothing more is
        written, the rest of its quota comes back) and its schedule's ticks (paused and kept: resume it, or DELETE
        …/schedule/ to remove it). Emails already asked to be sent still go; cancel nothing else."""
        campaign = self.get_object()
        cancelled = schedules.campaign_cancel(campaign=campaign)
        if not cancelled.runs and not cancelled.schedule_paused:
            raise Conflict(f"campaign {campaign.pk} has no active run and no schedule ticking: nothing to cancel")
        body = {"campaign": campaign.pk, "runs_cancelled": cancelled.runs, "schedule_paused": cancelled.schedule_paused}
        return Response(body)

    @extend_schema(
        summary="Preview the campaign's email for one contact (no run)",
        request=PreviewRequestSerializer,
        responses={200: PreviewSerializer},
        examples=[
            OpenApiExample("by external id", value={"contact": "u42"}, request_only=True),
            OpenApiExample("prompt only, no model call", value={"contact": "u42", "sample": False}, request_only=True),
        ],
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        """The picks and why, the favorite genre, the rendered prompt and (unless `sample` is false) a sample email
        written by the tenant's routed model and checked as a run checks it, for one contact of the tenant (by
        external_id, or numeric id). No run, no email and no quota; the model call is the tenant's usage. A
        contact not in the tenant is a 400 on `contact`; a model that cannot be reached leaves `problem` saying so."""
        campaign = self.get_object()
        params = PreviewRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        contact = self._contact(params.validated_data["contact"])
        try:
            preview = campaign_preview(campaign=campaign, contact=contact, write=params.validated_data["sample"])
        except ProviderError as exc:  # as the admin's preview: the picks and prompt, and why there is no sample
            preview = campaign_preview(campaign=campaign, contact=contact, write=False)
            preview.problem = f"the model could not be reached: {exc.message}"
        return Response(PreviewSerializer(preview).data)

    def _contact(self, ref: str) -> Contact:
        contacts = Contact.objects.for_tenant(self.tenant)
        contact = contacts.filter(external_id=ref).first()
        if contact is None and ref.isdigit() and int(ref) < 2**63:
            contact = contacts.filter(pk=int(ref)).first()
        if contact is None:
            raise serializers.ValidationError(
                {"contact": [f"no contact {ref!r} in your tenant (by external_id or id)"]}
            )
        return contact

    @extend_schema(summary="How the campaign's subject-line variants did: per variant, and the A/B verdict",
                   **SUBJECT_TEST_DOCS)  # fmt: skip
    @action(detail=True, methods=["get"])
    def subject_test(self, request, pk=None):
        """Per subject variant: emails, sent, delivered, unique opens and clicks, and the open and click rates (per
        delivered email when the provider reports deliveries, else per sent one). For an "ab" campaign, whether the
        best variant's lead on opens and on clicks is more than chance (a two-proportion test, Holm-adjusted), or
        "not enough data yet" below `min_per_arm`; a "pick" campaign counts which variants reviewers picked."""
        return Response(SubjectTestSerializer(subject_test_report(campaign=self.get_object())).data)

    @extend_schema(summary="The schedule's firings, newest first", responses=CampaignTickSerializer(many=True))
    @action(detail=True, methods=["get"])
    def ticks(self, request, pk=None):
        """The schedule's firings, newest first: launched (with the run), skipped (a run was still active, or the
        schedule paused) or failed (and why)."""
        campaign = self.get_object()
        ticks = CampaignTick.objects.for_tenant(self.tenant).filter(campaign=campaign)
        self.page_ordering = ("-at", "-pk")  # the cursor's order, not the campaigns'
        page = self.paginate_queryset(ticks)
        return self.get_paginated_response(CampaignTickSerializer(page, many=True).data)


@crud_docs("run", "runs")
class CampaignRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Campaign runs: progress, counts, cost; send the approved emails or cancel."""

    scope_model = CampaignRun
    filterset_class = CampaignRunFilter
    serializer_class = CampaignRunSerializer
    list_ordering = ("-created_at", "-pk")
    action_capabilities = {"send": Capability.RUN, "cancel": Capability.RUN}

    @extend_schema(summary="Send the run's approved emails", request=None, responses={202: RunSendSerializer})
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """Ask for every approved email of the run to be sent, each at most once, at the tenant's rate, in its
        contact's send window and under the frequency cap: one task per email, in the background. Answers with
        how many were queued, and the run's emails counted by status and by sending state (the outcome, where
        tasks run in-process: no broker)."""
        run = self.get_object()
        queued = sending.run_send_request(run=run)
        tasks.run_send_approved.delay_on_commit(run.pk, run.tenant_id)
        counts = sending.run_send_counts(run=run)
        body = {"detail": f"queued {queued} approved email(s)", "run": run.pk, "queued": queued, "emails": counts,
                "sending": sending.run_send_states(run=run)}  # fmt: skip
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="How the run's subject-line variants did: per variant, and the A/B verdict",
                   **SUBJECT_TEST_DOCS)  # fmt: skip
    @action(detail=True, methods=["get"])
    def subject_test(self, request, pk=None):
        """The campaign's subject test (/campaigns/{id}/subject_test/) over this run's emails only."""
        run = self.get_object()
        return Response(SubjectTestSerializer(subject_test_report(campaign=run.campaign, run=run)).data)

    @extend_schema(summary="Cancel an active run", request=None,
                   responses={200: CampaignRunSerializer, 409: OpenApiResponse(ErrorSerializer, "The run is not active.")})  # fmt: skip
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop a queued or running run: what is written stays, nothing more is written, the rest of its quota
        comes back."""
        run = self.get_object()
        if not services.run_cancel(run=run):
            raise Conflict(f"run {run.pk} is {run.status}; only active runs can be cancelled")
        run.refresh_from_db()
        return Response(self.get_serializer(run).data)


REVIEW_CONFLICT = OpenApiResponse(ErrorSerializer, "The email's status does not allow this (the message says which).")


@crud_docs("email", "emails")
class GeneratedEmailViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The emails runs wrote: review them (approve, edit, reject, regenerate) and settle cut-off sends."""

    scope_model = GeneratedEmail
    filterset_class = GeneratedEmailFilter
    serializer_class = GeneratedEmailSerializer
    scope_select_related = ("contact",)
    # A page reads the columns it shows, and names each email's contact by external_id: the prompt, the original
    # draft, the checks and the contact's other columns (attributes and all) are not read.
    list_only = ("tenant", *(name for name in GeneratedEmailSerializer.Meta.fields if name != "contact"),
                 "contact__external_id")  # fmt: skip
    # Settling a cut-off send (mark it sent, or send it again) is sending: the marketer's, not the reviewer's.
    # A test to any address the caller names is sending too (the desk's test goes to the reviewer's own address).
    action_capabilities = dict.fromkeys(
        ("approve", "reject", "edit", "regenerate", "subject"), Capability.REVIEW
    ) | dict.fromkeys(("mark_sent", "send_again", "send", "test_send"), Capability.RUN)

    def _review(self, change) -> Response:
        email = self.get_object()
        try:
            change(email)
        except InvalidTransition as exc:
            raise Conflict(str(exc)) from exc
        except ValidationError as exc:
            raise serializers.ValidationError({"detail": exc.messages}) from exc
        return Response(self.get_serializer(email).data)

    @extend_schema(summary="Approve a draft", request=None, responses={200: GeneratedEmailSerializer,
                   409: REVIEW_CONFLICT})  # fmt: skip
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._review(lambda email: email.approve(by=str(request.user)))

    @extend_schema(summary="Reject a draft, with the reason", request=RejectSerializer,
                   responses={200: GeneratedEmailSerializer, 409: REVIEW_CONFLICT},
                   examples=[OpenApiExample("tone", value={"reason": "too pushy for this list"}, request_only=True)])  # fmt: skip
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        params = RejectSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return self._review(lambda email: email.reject(by=str(request.user), reason=params.validated_data["reason"]))

    @extend_schema(summary="Pick a draft's subject among its variants (it stays a draft)", request=SubjectPickSerializer,
                   responses={200: GeneratedEmailSerializer, 409: REVIEW_CONFLICT})  # fmt: skip
    @action(detail=True, methods=["post"])
    def subject(self, request, pk=None):
        def pick(email):  # checked once the email is found: another tenant's is a 404 whatever the body
            params = SubjectPickSerializer(data=request.data)
            params.is_valid(raise_exception=True)
            email.subject_pick(by=str(request.user), index=params.validated_data["variant"])

        return self._review(pick)

    @extend_schema(summary="Edit a draft's subject and body, and approve it", request=EditSerializer,
                   responses={200: GeneratedEmailSerializer, 409: REVIEW_CONFLICT})  # fmt: skip
    @action(detail=True, methods=["post"])
    def edit(self, request, pk=None):
        """Replace subject and body, and approve in the same step."""
        params = EditSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return self._review(lambda email: email.edit_and_approve(by=str(request.user), **params.validated_data))

    @extend_schema(summary="Have an email written again (202)", request=RegenerateSerializer,
                   responses={202: GeneratedEmailSerializer, 409: REVIEW_CONFLICT},
                   examples=[OpenApiExample("feedback", value={"feedback": "shorter, and mention the sale"},
                                            request_only=True)])  # fmt: skip
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        """Have a failed, rejected or unreviewed email written again by a task (fresh picks, same campaign settings,
        and the reviewer's optional `feedback`): 202, the email regenerating until it is a draft or failed again."""
        email = self.get_object()
        params = RegenerateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            services.email_regenerate_request(email=email, feedback=params.validated_data["feedback"])
        except (InvalidTransition, services.CampaignError) as exc:
            raise Conflict(str(exc)) from exc
        return Response(self.get_serializer(email).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Mark a cut-off send as delivered", request=None,
                   responses={200: GeneratedEmailSerializer, 409: REVIEW_CONFLICT})  # fmt: skip
    @action(detail=True, methods=["post"])
    def mark_sent(self, request, pk=None):
        """An email whose send was cut off ("send_unknown") did arrive: a person checked (its message id)."""
        return self._review(lambda email: email.mark_sent(by=str(request.user)))

    @extend_schema(summary="Send a failed or cut-off email again (202)", request=None,
                   responses={202: GeneratedEmailSerializer, 409: REVIEW_CONFLICT})  # fmt: skip
    @action(detail=True, methods=["post"])
    def send_again(self, request, pk=None):
        """Send an email whose send failed or was cut off once more, in the background (202)."""
        email = self.get_object()
        try:
            email.send_again(by=str(request.user))
        except InvalidTransition as exc:
            raise Conflict(str(exc)) from exc
        tasks.email_send.delay_on_commit(email.pk, email.tenant_id)
        email.refresh_from_db()
        return Response(self.get_serializer(email).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Send one approved email now (202)", request=None,
                   responses={202: GeneratedEmailSerializer, 409: REVIEW_CONFLICT})  # fmt: skip
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """Ask for one approved email to be sent, in the background, as a run's send does: at most once, never to a
        suppressed or unsubscribed address, in its contact's send window, under the frequency cap and the tenant's
        rate, and not while the tenant's sending is paused (it waits: `send_after` and `send_error` say until when
        and why). Asking again while it is queued sends it no second time. 202 with the email as it stands."""
        email = self.get_object()
        if email.status != EmailStatus.APPROVED:
            raise Conflict(f"email {email.pk} is {email.status}; only an approved email can be sent")
        sending.emails_send_request(emails=GeneratedEmail.objects.for_tenant(self.tenant).filter(pk=email.pk))
        tasks.email_send.delay_on_commit(email.pk, email.tenant_id)
        email.refresh_from_db()
        return Response(self.get_serializer(email).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Send a test of the email to an address you give",
        request=TestSendSerializer,
        responses={
            200: TestSentSerializer,
            400: OpenApiResponse(ErrorSerializer, "A bad address, or an email with no text yet."),
            502: OpenApiResponse(ErrorSerializer, "The mail server did not take the test (`upstream_error`)."),
        },
        examples=[OpenApiExample("to me", value={"to": "marketer@acme.example"}, request_only=True)],
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def test_send(self, request, pk=None):
        """The email as a test to `to` (e.g. your own address), at once: its subject marked [Test], a note on top,
        without the contact's unsubscribe link. The email does not change (not sent, not counted against the
        frequency cap); its audit log records the test, by whom and to where."""
        email = self.get_object()
        params = TestSendSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        to = params.validated_data["to"]
        try:
            sending.email_test_send(email=email, to=to, by=str(request.user))
        except sending.InvalidMessage as exc:
            raise serializers.ValidationError({"to" if "address" in str(exc) else "detail": [str(exc)]}) from exc
        except sending.TestSendRefused as exc:
            raise UpstreamError(str(exc)) from exc
        return Response({"sent_to": to, "email": self.get_serializer(email).data})
