"""List pages render their rows without DRF's per-field machinery: the same output, about a quarter of the time.

A ModelSerializer renders each field of each row through `_readable_fields`, `get_attribute` (with its callable
checks and exception handling) and `to_representation`; on a 100-row email page that is most of the request
(bench/api.py). `RowsSerializer`, the list serializer every API model serializer gets (`ApiModelSerializer`),
works out once per page how to read each field: the attribute path (the foreign key's own column for a primary-key
relation), and whether the value needs converting (datetimes, decimals, slugs, lists go through the field's own
`to_representation`; strings, integers, floats, booleans and JSON of those model fields are already what DRF would
output; a method field is given the row). A serializer with anything this does not understand (a nested serializer, a source of
"*", a callable attribute, its own `to_representation`) renders the DRF way, so the output never differs:
tests/test_api_rows.py compares the two on every list the API serves. API_FAST_ROWS=false renders every list the
DRF way."""

import copy
from operator import attrgetter

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from rest_framework import fields as drf_fields
from rest_framework import relations, serializers

# DRF fields whose to_representation returns a model value of the matching type unchanged.
_AS_IS = {
    drf_fields.CharField: (models.CharField, models.TextField),
    drf_fields.IntegerField: (models.IntegerField,),  # the small, big and positive ones are subclasses
    drf_fields.FloatField: (models.FloatField,),
    drf_fields.BooleanField: (models.BooleanField,),
}


def _itself(row):
    return row


def _model_field(model, name):
    try:
        return model._meta.get_field(name)
    except Exception:  # FieldDoesNotExist, or a reverse relation: not a column
        return None


def _field_plan(field, model):
    """(name, attribute getter, converter or None) for one readable field, or None when only DRF can render it."""
    attrs = list(field.source_attrs)
    if type(field) is serializers.SerializerMethodField:
        return field.field_name, _itself, field.to_representation  # the method is given the row, as DRF does
    if not attrs or field.source == "*":
        return None
    if isinstance(field, serializers.BaseSerializer):
        return None  # nested serializers
    if isinstance(field, relations.PrimaryKeyRelatedField):
        target = _model_field(model, attrs[0])
        if len(attrs) != 1 or field.pk_field is not None or not isinstance(target, models.ForeignKey):
            return None
        return field.field_name, attrgetter(target.attname), None
    if isinstance(field, relations.RelatedField):
        if field.use_pk_only_optimization() or type(field).get_attribute is not relations.RelatedField.get_attribute:
            return None
    elif type(field).get_attribute is not drf_fields.Field.get_attribute:
        return None
    # Every step of the path must be a column or a relation: a method would be called by DRF, a property may be.
    step_model, last = model, None
    for attr in attrs:
        if step_model is None:
            return None
        last = _model_field(step_model, attr)
        if last is None or last.auto_created and not last.concrete:
            return None
        step_model = last.related_model
    for drf_type, model_types in _AS_IS.items():
        if type(field) is drf_type and isinstance(last, model_types):
            return field.field_name, attrgetter(".".join(attrs)), None
    if type(field) is drf_fields.JSONField and not field.binary and isinstance(last, models.JSONField):
        return field.field_name, attrgetter(".".join(attrs)), None
    return field.field_name, attrgetter(".".join(attrs)), field.to_representation


def row_plan(child: serializers.Serializer):
    """How to render each of `child`'s fields, or None when the serializer must render its rows itself."""
    if not isinstance(child, serializers.ModelSerializer):
        return None
    if type(child).to_representation is not serializers.Serializer.to_representation:
        return None
    model = child.Meta.model
    plan = []
    for field in child._readable_fields:
        step = _field_plan(field, model)
        if step is None:
            return None
        plan.append(step)
    return plan


def _render(plan, row) -> dict:
    out = {}
    for name, get, convert in plan:
        try:
            value = get(row)
        except ObjectDoesNotExist:  # DRF renders a missing related object as None too
            value = None
        out[name] = None if value is None else (value if convert is None else convert(value))
    return out


class RowsSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        rows = data.all() if isinstance(data, models.manager.BaseManager) else data
        plan = row_plan(self.child) if settings.API_FAST_ROWS else None
        if plan is None:
            return super().to_representation(rows)
        return [_render(plan, row) for row in rows]


class ApiModelSerializer(serializers.ModelSerializer):
    """The API's model serializers: lists render through RowsSerializer unless Meta names another, and the fields
    are built from the model once per class."""

    def get_fields(self):
        """ModelSerializer builds every field from the model for each serializer made, a request's largest single
        cost after its query (each field's unique validators scan the model's constraints). What it builds depends
        only on the class (Meta, the declared fields), so it is built once per class and copied for each instance,
        as DRF copies declared fields."""
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built
        return copy.deepcopy(built)

    @classmethod
    def many_init(cls, *args, **kwargs):
        meta = getattr(cls, "Meta", None)
        if meta is not None and not hasattr(meta, "list_serializer_class"):
            meta.list_serializer_class = RowsSerializer
        return super().many_init(*args, **kwargs)
