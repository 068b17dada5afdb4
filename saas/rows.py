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
    """(name, attribute getter, converter or None, lookup or None) for one readable field, or None when only DRF can
    render it. The lookup is the field's `values()` path (`contact__external_id`) and the converter to use on what
    that gives; None where the value needs the model row (a method field, a path through a nullable relation)."""
    attrs = list(field.source_attrs)
    if type(field) is serializers.SerializerMethodField:
        return field.field_name, _itself, field.to_representation, None  # the method is given the row, as DRF does
    if not attrs or field.source == "*":
        return None
    if isinstance(field, serializers.BaseSerializer):
        return None  # nested serializers
    if isinstance(field, relations.PrimaryKeyRelatedField):
        target = _model_field(model, attrs[0])
        if len(attrs) != 1 or field.pk_field is not None or not isinstance(target, models.ForeignKey):
            return None
        return field.field_name, attrgetter(target.attname), None, (attrs[0], None)
    slug = None
    if isinstance(field, relations.RelatedField):
        if field.use_pk_only_optimization() or type(field).get_attribute is not relations.RelatedField.get_attribute:
            return None
        if type(field) is relations.SlugRelatedField and "__" not in field.slug_field:
            slug = field.slug_field
    elif type(field).get_attribute is not drf_fields.Field.get_attribute:
        return None
    # Every step of the path must be a column or a relation: a method would be called by DRF, a property may be.
    # values() joins a nullable relation with LEFT JOIN, where DRF may skip the field: only non-null steps before
    # the last (a nullable last relation renders as None both ways), and never a to-many one.
    step_model, last, through_null = model, None, False
    for depth, attr in enumerate(attrs):
        if step_model is None:
            return None
        last = _model_field(step_model, attr)
        if last is None or last.auto_created and not last.concrete:
            return None
        # A to-many step would give values() a row per related row: only the model row can render it.
        through_null = through_null or depth < len(attrs) - 1 and last.null or last.many_to_many or last.one_to_many
        step_model = last.related_model
    lookup = None if through_null else "__".join(attrs)
    get = attrgetter(".".join(attrs))
    for drf_type, model_types in _AS_IS.items():
        if type(field) is drf_type and isinstance(last, model_types):
            return field.field_name, get, None, lookup and (lookup, None)
    if type(field) is drf_fields.JSONField and not field.binary and isinstance(last, models.JSONField):
        return field.field_name, get, None, lookup and (lookup, None)
    if slug is not None:
        target = _model_field(last.related_model, slug) if last.is_relation else None
        slugged = lookup and target is not None and target.concrete and not target.is_relation
        return field.field_name, get, field.to_representation, (f"{lookup}__{slug}", None) if slugged else None
    if last.is_relation:  # another related field's own representation of the object: only from the row
        return field.field_name, get, field.to_representation, None
    return field.field_name, get, field.to_representation, lookup and (lookup, field.to_representation)


def _plans(child):
    if not isinstance(child, serializers.ModelSerializer):
        return None
    if type(child).to_representation is not serializers.Serializer.to_representation:
        return None
    model = child.Meta.model
    plans = []
    for field in child._readable_fields:
        step = _field_plan(field, model)
        if step is None:
            return None
        plans.append(step)
    return plans


def row_plan(child: serializers.Serializer):
    """How to render each of `child`'s fields from a model row, or None when the serializer must render its rows
    itself."""
    plans = _plans(child)
    return None if plans is None else [(name, get, convert) for name, get, convert, _ in plans]


def values_plan(child: serializers.Serializer):
    """(name, values() lookup, converter) for each of `child`'s fields, or None unless every field can be rendered
    from a `values()` row: list pages then skip building model instances, the larger part of reading a page."""
    plans = _plans(child)
    if plans is None or any(values is None for *_, values in plans):
        return None
    return [(name, lookup, convert) for name, _, _, (lookup, convert) in plans]


_UNSET = object()


def values_lookups(serializer_class) -> tuple[str, ...] | None:
    """The `values()` paths a list of `serializer_class` reads, or None when its rows must be model instances.
    Worked out once per class: an ApiModelSerializer's fields depend only on its class (get_fields below)."""
    if not (isinstance(serializer_class, type) and issubclass(serializer_class, ApiModelSerializer)):
        return None
    lookups = serializer_class.__dict__.get("_values_lookups", _UNSET)
    if lookups is _UNSET:
        plan = values_plan(serializer_class(context={}))
        lookups = None if plan is None else tuple(dict.fromkeys(lookup for _, lookup, _ in plan))
        serializer_class._values_lookups = lookups
    return lookups


def _render(plan, row) -> dict:
    out = {}
    for name, get, convert in plan:
        try:
            value = get(row)
        except ObjectDoesNotExist:  # DRF renders a missing related object as None too
            value = None
        out[name] = None if value is None else (value if convert is None else convert(value))
    return out


def _render_values(plan, row: dict) -> dict:
    out = {}
    for name, lookup, convert in plan:
        value = row[lookup]
        out[name] = None if value is None else (value if convert is None else convert(value))
    return out


class RowsSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        rows = data.all() if isinstance(data, models.manager.BaseManager) else data
        if isinstance(rows, list) and rows and type(rows[0]) is dict:  # a page read with values() (the API's lists)
            plan = values_plan(self.child)
            if plan is None:
                raise TypeError(f"{type(self.child).__name__} cannot render values() rows; give it model rows")
            return [_render_values(plan, row) for row in rows]
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
