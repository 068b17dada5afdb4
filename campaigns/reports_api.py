"""/api/v1/delivery-reports/: what providers other than SES (whose reports arrive through its webhook) say about
the tenant's mail, through the same path as SES's (campaigns.reports)."""

import json

from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from campaigns.models import DeliveryReport, ReportKind
from campaigns.reports import report_record
from datasets.api import MAX_BULK, PARSERS, Pages
from datasets.models import moment_problem
from datasets.serializers import JSONObjectField
from datasets.suppression import address_normal
from tenants.api import TenantScopedViewSet


class DeliveryReportSerializer(serializers.ModelSerializer):
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


class DeliveryReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """What providers other than SES (whose reports arrive through its webhook) say about the tenant's mail: read
    it (?kind= narrows it), report one event or a list of up to 1,000 (bad rows reported by their index, the good
    ones kept). The same path as SES's: a hard bounce or complaint suppresses the address, soft bounces count to
    the limit, complaints feed the complaint guard. Give event_id to make a retried report harmless. Never
    changed or removed."""

    scope_model = DeliveryReport
    serializer_class = DeliveryReportSerializer
    list_ordering = ("-at", "-pk")
    parser_classes = PARSERS
    pagination_class = Pages

    def filter_queryset(self, queryset):
        kind = self.request.query_params.get("kind")
        return queryset.filter(kind=kind[:20]) if kind else queryset

    def create(self, request, *args, **kwargs):
        data = request.data
        rows = data if isinstance(data, list) else None
        if rows is None and not isinstance(data, dict):
            return Response({"detail": "send one report (an object) or a list of them"}, status.HTTP_400_BAD_REQUEST)
        if rows is not None and len(rows) > MAX_BULK:
            return Response({"detail": f"at most {MAX_BULK} reports per request"}, status.HTTP_400_BAD_REQUEST)
        recorded, already, errors = [], [], []
        for index, row in enumerate(rows if rows is not None else [data]):
            if not isinstance(row, dict):
                errors.append({"row": index, "error": "each report must be an object"})
                continue
            body = DeliveryReportAddSerializer(data=row)
            if not body.is_valid():
                if rows is None:
                    return Response(body.errors, status.HTTP_400_BAD_REQUEST)
                said = "; ".join(f"{name}: {' '.join(map(str, why))}" for name, why in body.errors.items())
                errors.append({"row": index, "error": said})
                continue
            done = report_record(tenant_id=self.tenant.pk, **body.validated_data)
            (recorded if done.created else already).append(done.report.pk)
            if rows is None:
                code = status.HTTP_201_CREATED if done.created else status.HTTP_200_OK
                return Response(self.get_serializer(done.report).data, code)
        return Response({"recorded": recorded, "already": already, "errors": errors}, status=207)
