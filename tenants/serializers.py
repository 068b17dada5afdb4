"""Serializer pieces that keep foreign ids inside the caller's tenant."""

from rest_framework import serializers

from saas.rows import ApiModelSerializer


class TenantScopedMixin:
    def get_queryset(self):
        return self.scope_model.objects.for_tenant(self.context["tenant"])


class TenantPrimaryKeyField(TenantScopedMixin, serializers.PrimaryKeyRelatedField):
    """A foreign key by id; another tenant's id is 'does not exist', exactly like a missing one."""

    def __init__(self, model, **kwargs):
        self.scope_model = model
        super().__init__(**kwargs)


class TenantExternalIdField(TenantScopedMixin, serializers.SlugRelatedField):
    """A foreign key by the tenant's own external id (USER_ID, ITEM_ID)."""

    def __init__(self, model, **kwargs):
        self.scope_model = model
        super().__init__(slug_field="external_id", **kwargs)


class TenantModelSerializer(ApiModelSerializer):
    """Writes always land in the caller's tenant, taken from context, never from the payload; fields named in
    `unique_in_tenant` are checked within the tenant (the tenant is not a serializer field, so DRF can't)."""

    unique_in_tenant: tuple[str, ...] = ()

    def create(self, validated_data):
        return super().create({**validated_data, "tenant": self.context["tenant"]})

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        for name in self.unique_in_tenant:
            if name not in attrs:
                continue
            clash = model.objects.for_tenant(self.context["tenant"]).filter(**{name: attrs[name]})
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError(
                    {name: f"{attrs[name]!r} is already used by another {model.__name__.lower()}"}
                )
        return attrs
