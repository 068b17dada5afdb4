"""/api/v1/audit-log/: the tenant's audit log, every decision on an email and every step of its sending, newest
first (campaigns.EmailEvent, written by the product in the same transaction as each change; never changed)."""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers

from campaigns.models import EmailEvent, EventKind
from saas.filters import IdFilter, MomentFilter
from saas.rows import ApiModelSerializer
from tenants.api import TenantScopedViewSet


class EmailEventSerializer(ApiModelSerializer):
    email = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The email's id.")
    run = serializers.IntegerField(source="email.run_id", read_only=True, help_text="The email's run.")
    campaign = serializers.IntegerField(source="email.run.campaign_id", read_only=True,
                                        help_text="The run's campaign.")  # fmt: skip
    detail = serializers.JSONField(read_only=True, help_text="What else the event says, e.g. a reason, an address.")

    class Meta:
        model = EmailEvent
        fields = ["id", "at", "kind", "status", "actor", "email", "run", "campaign", "detail"]
        read_only_fields = fields


class EmailEventFilter(django_filters.FilterSet):
    email = IdFilter(field_name="email_id", help_text="The email's id.")
    run = IdFilter(field_name="email__run_id", help_text="The run's id (every email of it).")
    campaign = IdFilter(field_name="email__run__campaign_id", help_text="The campaign's id (every run of it).")
    kind = django_filters.MultipleChoiceFilter(choices=EventKind.choices, help_text="What happened; repeatable.")
    actor = django_filters.CharFilter(max_length=150, help_text="Who: a user's name or `api-key:<key name>`; "
                                      "empty for the product's own steps.")  # fmt: skip
    since = MomentFilter(field_name="at", lookup_expr="gte", help_text="Events at or after this moment.")
    until = MomentFilter(field_name="at", lookup_expr="lt", help_text="Events before this moment.")

    class Meta:
        model = EmailEvent
        fields = []


@extend_schema_view(
    list=extend_schema(summary="The audit log, newest first (filters below)"),
    retrieve=extend_schema(summary="One audit log event"),
)
class AuditLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Who approved, edited or rejected which email and why, who asked for a rewrite or a test, and every step of
    sending and delivery, a page at a time (cursor), newest first."""

    scope_model = EmailEvent
    serializer_class = EmailEventSerializer
    filterset_class = EmailEventFilter
    scope_select_related = ("email__run",)
    list_ordering = ("-at", "-pk")
