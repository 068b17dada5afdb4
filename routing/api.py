"""/api/v1/usage/: what the tenant's model calls used and cost, summed by model, campaign, run, task or day
(routing.usage.usage_by, the figures the dashboard reads)."""

from decimal import Decimal

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers
from rest_framework.response import Response

from campaigns.models import Campaign
from routing.models import LLMCall
from routing.usage import GROUPS, usage_by
from saas.filters import MAX_ID
from tenants.api import TenantScopedViewSet

SUMS = ("calls", "failed", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


class UsageQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=list(GROUPS), default="model")
    since = serializers.DateTimeField(required=False, help_text="Calls made at or after this moment (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Calls made before this moment (ISO 8601).")
    campaign = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                        help_text="Only this campaign's calls.")  # fmt: skip

    def validate(self, attrs):
        if "since" in attrs and "until" in attrs and attrs["until"] <= attrs["since"]:
            raise serializers.ValidationError({"until": ["must be after since"]})
        return attrs


class UsageSumsSerializer(serializers.Serializer):
    calls = serializers.IntegerField(help_text="Model calls.")
    failed = serializers.IntegerField(help_text="Calls that failed.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField(help_text="Input tokens read from the prompt cache.")
    cache_write_tokens = serializers.IntegerField(help_text="Input tokens written to the prompt cache.")
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=8, help_text="In dollars.")


class UsageRowSerializer(UsageSumsSerializer):
    key = serializers.CharField(allow_null=True, help_text="The group's value as text: a model key, a campaign or "
                                "run id, a task, a day (YYYY-MM-DD); null for calls of no campaign or run.")  # fmt: skip
    model = serializers.CharField(required=False, help_text="group_by=model: the model that answered.")
    campaign = serializers.IntegerField(required=False, allow_null=True,
                                        help_text="group_by=campaign: its id (null: previews and tests).")  # fmt: skip
    campaign_name = serializers.CharField(required=False, allow_null=True,
                                          help_text="group_by=campaign: its name (null once deleted).")  # fmt: skip
    run = serializers.IntegerField(required=False, allow_null=True, help_text="group_by=run: its id.")
    task = serializers.CharField(required=False, help_text="group_by=task: the routing task.")
    day = serializers.DateField(required=False, help_text="group_by=day: the day, in UTC.")
    latency_ms = serializers.IntegerField(help_text="Mean latency of the calls.")


@extend_schema_serializer(many=False)  # the list action answers one object of sums, not an array
class UsageSerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=list(GROUPS))
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    campaign = serializers.IntegerField(allow_null=True)
    results = UsageRowSerializer(many=True, help_text="Most costly first; by day, in order of days.")
    total = UsageSumsSerializer(help_text="The sums over every row.")


EXAMPLE = {
    "group_by": "model", "since": "2026-12-01T00:00:00Z", "until": None, "campaign": None,
    "results": [{"key": "bedrock/nova-lite", "model": "bedrock/nova-lite", "calls": 1200, "failed": 3,
                 "input_tokens": 960000, "output_tokens": 240000, "cache_read_tokens": 0, "cache_write_tokens": 0,
                 "cost_usd": "0.11520000", "latency_ms": 840}],
    "total": {"calls": 1200, "failed": 3, "input_tokens": 960000, "output_tokens": 240000, "cache_read_tokens": 0,
              "cache_write_tokens": 0, "cost_usd": "0.11520000"},
}  # fmt: skip


class UsageViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """The tenant's model usage and cost, summed: one row per model, campaign, run, task or day."""

    scope_model = LLMCall
    pagination_class = None  # sums, at most one row per group: one answer
    filter_backends = []

    @extend_schema(
        summary="Tokens, calls and cost of the tenant's model calls, summed by model, campaign, run, task or day",
        parameters=[UsageQuerySerializer],
        responses={200: UsageSerializer},
        examples=[OpenApiExample("by model this month", value=EXAMPLE, response_only=True)],
    )
    def list(self, request, *args, **kwargs):
        """`group_by` model (the one that answered), campaign, run, task or day (UTC); `since` and `until` bound the
        calls' times (until excluded), `campaign` keeps one campaign's. Calls made for no campaign (previews) are
        the campaign null. Cost in dollars, as a decimal string."""
        params = UsageQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        group = query["group_by"]
        rows = usage_by(self.tenant, group, since=query.get("since"), until=query.get("until"),
                        campaign_id=query.get("campaign"))  # fmt: skip
        for row in rows:
            row["key"] = None if row[group] is None else str(row[group])
            row["cost_usd"] = row["cost_usd"] or Decimal(0)
            for name in SUMS:
                row[name] = row[name] or 0
        if group == "campaign":
            names = dict(Campaign.objects.for_tenant(self.tenant).filter(pk__in=[r["campaign"] for r in rows])
                         .values_list("pk", "name"))  # fmt: skip
            for row in rows:
                row["campaign_name"] = names.get(row["campaign"])
        total = {name: sum(row[name] for row in rows) for name in SUMS}
        total["cost_usd"] = sum((row["cost_usd"] for row in rows), Decimal(0))
        body = {"group_by": group, "since": query.get("since"), "until": query.get("until"),
                "campaign": query.get("campaign"), "results": rows, "total": total}  # fmt: skip
        return Response(UsageSerializer(body).data)
