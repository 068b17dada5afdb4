"""/api/v1/api-keys/: the tenant's API keys, for its owners: create one (a role no higher than the caller's, read-only
or read-write; the plain key is in the answer once and never again), list them by prefix, revoke one."""

import django_filters
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from saas.filters import StrictBooleanFilter
from saas.rows import ApiModelSerializer
from saas.schema import ErrorSerializer
from tenants.api import TenantScopedViewSet
from tenants.models import ApiKey, KeyScope, Role
from tenants.roles import Capability, role_within


class ApiKeySerializer(ApiModelSerializer):
    prefix = serializers.SerializerMethodField(help_text="How the key starts (`ms_<prefix>_…`): how to tell it apart.")
    revoked = serializers.SerializerMethodField(help_text="Whether the key is revoked (its requests are refused).")

    class Meta:
        model = ApiKey
        fields = ["id", "name", "role", "scope", "prefix", "created_at", "last_used_at", "revoked_at", "revoked_by",
                  "revoked"]  # fmt: skip
        read_only_fields = fields

    def get_prefix(self, key) -> str:
        return f"ms_{key.prefix}_"

    def get_revoked(self, key) -> bool:
        return key.revoked_at is not None


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The key itself: shown in this answer only. Store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the key is for, e.g. `CRM sync`.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MARKETER,
                                   help_text="No higher than the role of the key that creates it.")  # fmt: skip
    scope = serializers.ChoiceField(choices=KeyScope.choices, default=KeyScope.READ_WRITE,
                                    help_text="`read-only` keys are refused every write (403).")  # fmt: skip

    def validate_role(self, role):
        caller = self.context["principal"].role
        if not role_within(role, caller):
            raise serializers.ValidationError(f"a {caller} key may not create a {role} key")
        return role


class ApiKeyFilter(django_filters.FilterSet):
    prefix = django_filters.CharFilter(method="by_prefix", max_length=120,
                                       help_text="The key's prefix: `ms_1a2b3c4d_`, `1a2b3c4d`, or a whole key.")  # fmt: skip
    revoked = StrictBooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True,
                                  help_text="`true`: only revoked keys; `false`: only live ones.")  # fmt: skip

    class Meta:
        model = ApiKey
        fields = []

    def by_prefix(self, queryset, name, value):
        parts = value.strip().split("_")
        prefix = parts[1] if len(parts) >= 2 and parts[0] == "ms" else parts[0]
        return queryset.filter(prefix=prefix)


OWNERS_ONLY = OpenApiResponse(ErrorSerializer, "Only an owner's read-write key manages keys.")


@extend_schema_view(
    list=extend_schema(
        summary="The tenant's API keys (owners only)", responses={200: ApiKeySerializer(many=True), 403: OWNERS_ONLY}
    ),  # fmt: skip
    retrieve=extend_schema(summary="One API key (owners only)", responses={200: ApiKeySerializer, 403: OWNERS_ONLY}),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's API keys. The key itself is shown once, when it is created; afterwards only its prefix. A
    revoked key stays listed (with when), and its requests are refused from the next one on."""

    scope_model = ApiKey
    serializer_class = ApiKeySerializer
    filterset_class = ApiKeyFilter
    list_ordering = ("-created_at", "-pk")
    read_capability = Capability.MANAGE_ACCOUNT
    action_capabilities = dict.fromkeys(("create", "revoke"), Capability.MANAGE_ACCOUNT)

    @extend_schema(
        summary="Create an API key (the key is in this answer only)",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, 403: OWNERS_ONLY},
        examples=[
            OpenApiExample("CRM reader", request_only=True,
                           value={"name": "CRM dashboard", "role": "reviewer", "scope": "read-only"}),
            OpenApiExample("created", response_only=True, status_codes=["201"], value={
                "id": 7, "name": "CRM dashboard", "role": "reviewer", "scope": "read-only", "prefix": "ms_1a2b3c4d_",
                "created_at": "2026-12-07T09:00:00Z", "last_used_at": None, "revoked_at": None, "revoked_by": "",
                "revoked": False,
                "key": "ms_1a2b3c4d_Vb3…"}),
        ],
    )  # fmt: skip
    def create(self, request, *args, **kwargs):
        params = ApiKeyCreateSerializer(data=request.data, context={"principal": request.user})
        params.is_valid(raise_exception=True)
        key, plain = ApiKey.objects.issue(tenant=self.tenant, **params.validated_data)
        key.key = plain
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key, at once", request=None,
                   responses={200: ApiKeySerializer, 403: OWNERS_ONLY})  # fmt: skip
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Refuse the key from its next request on (the key making this request too, if it names itself). A key
        revoked already stays as it was, with its first revocation's time and actor."""
        key = self.get_object()
        key.revoke(actor=str(request.user))
        return Response(self.get_serializer(key).data)
