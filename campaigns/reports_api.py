"""/api/v1/delivery-reports/: what providers other than SES (whose reports arrive through its webhook) say about
the tenant's mail, through the same path as SES's (campaigns.reports)."""

import json

import django_filters
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from campaigns.models import DeliveryReport, ReportKind
from campaigns.reports import report_record
from datasets.api import MAX_BULK, PARSERS
from datasets.models import moment_problem
from datasets.serializers import JSONObjectField
from datasets.suppression import address_normal
from saas.bulk import rows_check, rows_write
from saas.rows import ApiModelSerializer
from saas.schema import OneOrMany
from tenants.api import TenantScopedViewSet


class DeliveryReportSerializer(ApiModelSerializer):
    class Meta:
        model = DeliveryReport
        fields = ["id", "address", "kind", "provider", "event_id", "message_id", "email", "detail", "at",
                  "received_at"]  # fmt: skip
        read_only_fields = fields


DETAIL_MAX = 4000  # characters of a report's detail, as JSON


class DeliveryReportAddSerializer(serializers.Serializer):
    """One report from a provider: the address, what happened, who says so; optionally its own id for the event
    (a report sent twice with it is stored once), the message's id (ours, or the provider's), when, and the
    diagnostic (a text, or an object whose "diagnostic" is the text)."""

    address = serializers.CharField(max_length=254)
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    provider = serializers.RegexField(r"^[\w.+-]+$", max_length=40, error_messages={
        "invalid": "letters, digits and . _ + - only, e.g. sendgrid"})  # fmt: skip
    event_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    message_id = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    at = serializers.DateTimeField(required=False)
    detail = serializers.JSONField(required=False)

    def validate_address(self, value):
        try:
            return address_normal(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_at(self, value):
        if problem := moment_problem(value):
            raise serializers.ValidationError(f"{value:%Y-%m-%d} is {problem}")
        return value

    def validate_detail(self, value):
        if isinstance(value, str):
            value = {"diagnostic": value}
        if not isinstance(value, dict):
            raise serializers.ValidationError('a text (the diagnostic) or an object like {"diagnostic": "550 …"}')
        JSONObjectField().run_validation(value)  # no NUL, not nested too deep
        if len(json.dumps(value)) > DETAIL_MAX:
            raise serializers.ValidationError(f"at most {DETAIL_MAX} characters as JSON")
        return value


class DeliveryReportBulkSerializer(serializers.Serializer):
    recorded = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of the reports stored now.")
    already = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of events stored before.")
    errors = serializers.ListField(child=serializers.DictField(), help_text="`{row, error}` for each bad row.")


class DeliveryReportFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ReportKind.choices, help_text="What the provider reported.")

    class Meta:
        model = DeliveryReport
        fields = []


class DeliveryReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """What providers other than SES (whose reports arrive through its webhook) say about the tenant's mail: read
    it (?kind= narrows it), report one event or a list of up to 1,000 (bad rows reported by their index, the good
    ones kept). The same path as SES's: a hard bounce or complaint suppresses the address, soft bounces count to
    the limit, complaints feed the complaint guard; opens and clicks (detail.link: the URL) are only counted, by
    the campaigns' subject tests. Give event_id to make a retried report harmless. Never
    changed or removed."""

    scope_model = DeliveryReport
    serializer_class = DeliveryReportSerializer
    filterset_class = DeliveryReportFilter
    list_ordering = ("-at", "-pk")
    parser_classes = PARSERS

    @extend_schema(
        summary="Report one event, or a list of up to 1,000",
        request=OneOrMany(DeliveryReportAddSerializer(), name="DeliveryReportOneOrMany", max_items=MAX_BULK),
        responses={
            200: OpenApiResponse(DeliveryReportSerializer, "One event that was already recorded (same event_id)."),
            201: OpenApiResponse(DeliveryReportSerializer, "One event, now recorded."),
            207: OpenApiResponse(DeliveryReportBulkSerializer, "A list: recorded, already there, and bad rows."),
        },
        examples=[OpenApiExample("hard bounce", request_only=True, value={
            "address": "pat@example.com", "kind": "hard_bounce", "provider": "sendgrid", "event_id": "evt_81",
            "detail": "550 5.1.1 user unknown"}),
            OpenApiExample("click", request_only=True, value={
            "address": "pat@example.com", "kind": "clicked", "provider": "sendgrid", "event_id": "evt_82",
            "message_id": "<20261207.1.abc@mail.acme.example>", "detail": {"link": "https://acme.example/films/9"}})],
    )  # fmt: skip
    def create(self, request, *args, **kwargs):
        data = request.data
        rows = data if isinstance(data, list) else None
        if rows is None and not isinstance(data, dict):
            raise ValidationError(["send one report (an object) or a list of them"])
        if rows is not None and len(rows) > MAX_BULK:
            raise ValidationError([f"at most {MAX_BULK} reports per request"])
        checked = rows_check(DeliveryReportAddSerializer(), rows if rows is not None else [data],
                             not_object="each report must be an object")  # fmt: skip
        stored = {}

        def write(part):  # a report to a transaction, as SES's: its address lock and complaint check are held no longer
            [(index, body)] = part
            stored[index] = report_record(tenant_id=self.tenant.pk, **body)

        problems = sorted([*checked.bad, *rows_write(write, checked.good, chunk=1)], key=lambda p: p.index)
        if rows is None:
            if problems:
                raise ValidationError(problems[0].fields)
            done = stored[0]
            return Response(self.get_serializer(done.report).data,
                            status.HTTP_201_CREATED if done.created else status.HTTP_200_OK)  # fmt: skip
        return Response({
            "recorded": [done.report.pk for _, done in sorted(stored.items()) if done.created],
            "already": [done.report.pk for _, done in sorted(stored.items()) if not done.created],
            "errors": [{"row": problem.index, "error": problem.text()} for problem in problems],
        }, status=207)  # fmt: skip
