"""REST endpoints for prompt templates, campaigns (launch), runs (send) and emails (review)."""

from django.core.exceptions import ValidationError
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns import schedules, sending, services, tasks
from campaigns.models import Campaign, CampaignRun, CampaignTick, GeneratedEmail, InvalidTransition, PromptTemplate
from campaigns.serializers import (
    CampaignRunSerializer,
    CampaignSerializer,
    CampaignTickSerializer,
    EditSerializer,
    GeneratedEmailSerializer,
    LaunchSerializer,
    PromptTemplateSerializer,
    RegenerateSerializer,
    RejectSerializer,
    ScheduleSerializer,
)  # fmt: skip
from datasets.api import CrudViewSet
from tenants.api import TenantScopedViewSet
from tenants.roles import Capability


class PromptTemplateViewSet(CrudViewSet):
    scope_model = PromptTemplate
    serializer_class = PromptTemplateSerializer


class CampaignViewSet(CrudViewSet):
    scope_model = Campaign
    serializer_class = CampaignSerializer
    action_capabilities = dict.fromkeys(("launch", "schedule", "pause", "resume"), Capability.RUN)

    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        campaign = self.get_object()
        params = LaunchSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            run = services.campaign_launch(campaign=campaign, limit=params.validated_data.get("limit"))
        except services.CampaignError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(CampaignRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get", "post", "delete"])
    def schedule(self, request, pk=None):
        """GET the schedule; POST {"cron": "0 9 * * 1", "timezone": "Europe/Paris"} or {"every": 2, "period":
        "hours"} launches the campaign on that schedule (replacing one it has); DELETE stops it for good."""
        campaign = self.get_object()
        if request.method == "GET":
            current = schedules.campaign_schedule_get(campaign=campaign)
            if current is None:
                return Response({"detail": "this campaign has no schedule"}, status=status.HTTP_404_NOT_FOUND)
            return Response(current.as_dict())
        if request.method == "DELETE":
            removed = schedules.campaign_unschedule(campaign=campaign)
            return Response(status=status.HTTP_204_NO_CONTENT if removed else status.HTTP_404_NOT_FOUND)
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
            return Response({"detail": "this campaign has no schedule"}, status=status.HTTP_404_NOT_FOUND)
        return Response(schedules.campaign_schedule_get(campaign=campaign).as_dict())

    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Stop the schedule's ticks, keeping the schedule."""
        return self._pause_or_resume(schedules.campaign_pause)

    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._pause_or_resume(schedules.campaign_resume)

    @action(detail=True, methods=["get"])
    def ticks(self, request, pk=None):
        """The schedule's firings, newest first: launched (with the run), skipped (a run was still active, or the
        schedule paused) or failed (and why)."""
        campaign = self.get_object()
        ticks = CampaignTick.objects.for_tenant(self.tenant).filter(campaign=campaign).order_by("-at", "-pk")
        page = self.paginate_queryset(ticks)
        if page is not None:
            return self.get_paginated_response(CampaignTickSerializer(page, many=True).data)
        return Response(CampaignTickSerializer(ticks, many=True).data)


class CampaignRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    scope_model = CampaignRun
    serializer_class = CampaignRunSerializer
    list_ordering = ("-created_at", "-pk")
    action_capabilities = {"send": Capability.RUN, "cancel": Capability.RUN}

    def filter_queryset(self, queryset):
        campaign = self.request.query_params.get("campaign")
        return queryset.filter(campaign_id=campaign) if campaign and campaign.isdigit() else queryset

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

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        if not services.run_cancel(run=run):
            return Response({"detail": f"run {run.pk} is {run.status}; only active runs can be cancelled"}, status=409)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data)


class GeneratedEmailViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    scope_model = GeneratedEmail
    serializer_class = GeneratedEmailSerializer
    scope_select_related = ("contact",)
    # Settling a cut-off send (mark it sent, or send it again) is sending: the marketer's, not the reviewer's.
    action_capabilities = dict.fromkeys(("approve", "reject", "edit", "regenerate"), Capability.REVIEW) | dict.fromkeys(
        ("mark_sent", "send_again"), Capability.RUN
    )

    def filter_queryset(self, queryset):
        params = self.request.query_params
        if params.get("run", "").isdigit():
            queryset = queryset.filter(run_id=params["run"])
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        return queryset.order_by("pk")

    def _review(self, change) -> Response:
        email = self.get_object()
        try:
            change(email)
        except InvalidTransition as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except ValidationError as exc:
            raise serializers.ValidationError({"detail": exc.messages}) from exc
        return Response(self.get_serializer(email).data)

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._review(lambda email: email.approve(by=str(request.user)))

    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        params = RejectSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return self._review(lambda email: email.reject(by=str(request.user), reason=params.validated_data["reason"]))

    @action(detail=True, methods=["post"])
    def edit(self, request, pk=None):
        """Replace subject and body, and approve in the same step."""
        params = EditSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return self._review(lambda email: email.edit_and_approve(by=str(request.user), **params.validated_data))

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
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(email).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["post"])
    def mark_sent(self, request, pk=None):
        """An email whose send was cut off ("send_unknown") did arrive: a person checked (its message id)."""
        return self._review(lambda email: email.mark_sent(by=str(request.user)))

    @action(detail=True, methods=["post"])
    def send_again(self, request, pk=None):
        """Send an email whose send failed or was cut off once more, in the background (202)."""
        email = self.get_object()
        try:
            email.send_again(by=str(request.user))
        except InvalidTransition as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        tasks.email_send.delay_on_commit(email.pk, email.tenant_id)
        email.refresh_from_db()
        return Response(self.get_serializer(email).data, status=status.HTTP_202_ACCEPTED)
