"""Filter pieces every API list shares (django-filter): values are checked, and a bad one is a 400 that names the
parameter, never a query the database refuses (a 500)."""

import json
import math
from datetime import UTC

import django_filters
from django import forms
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

MAX_ID = 2**63 - 1  # PostgreSQL's bigint: a larger id would overflow it


class IdFilter(django_filters.NumberFilter):
    """An object's id: a whole number PostgreSQL can compare with (1 to 2**63 - 1)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """`true` or `false`; anything else is a 400 (django-filter's own BooleanFilter ignores it quietly)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, choices=[("true", "true"), ("false", "false")], coerce=lambda v: v == "true",
                         **kwargs)  # fmt: skip


class MomentField(django_filters.fields.IsoDateTimeField):
    """ISO 8601 allows offsets up to ±23:59, PostgreSQL only ±15:59: the moment goes to the database in UTC."""

    def clean(self, value):
        moment = super().clean(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("is outside the years 1 to 9999 in UTC", code="invalid") from None


class MomentFilter(django_filters.IsoDateTimeFilter):
    field_class = MomentField


class KeyValueField(forms.Field):
    """`key:value`, given once or more (`?attr=plan:gold&attr=city:Paris`)."""

    widget = forms.SelectMultiple  # reads every value of the parameter

    def to_python(self, value):
        values = [value] if isinstance(value, str) else list(value or [])
        pairs = []
        for text in values:
            key, colon, wanted = str(text).partition(":")
            if not colon or not key:
                # The text as a param, never in the message: DRF %-formats messages, and a "%" in it was a 500.
                raise forms.ValidationError("%(text)s is not key:value, e.g. attr=plan:gold", code="invalid",
                                            params={"text": repr(text)})  # fmt: skip
            if "\x00" in text:
                raise forms.ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
            pairs.append((key, wanted))
        return pairs


def scalar(text: str):
    """The JSON number, true, false or null a text spells, else None (NaN and infinities are not JSON)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, bool) or value is None or (isinstance(value, int | float) and math.isfinite(value)):
        return value
    return None


@extend_schema_field({"type": "array", "items": {"type": "string", "pattern": "^[^:]+:"}})
class AttributeFilter(django_filters.Filter):
    """Contacts whose `attributes` hold every `key:value` given: the value as text, or as the JSON number, true,
    false or null it spells (`attr=vip:true` matches `{"vip": true}` and `{"vip": "true"}`). Top-level keys only."""

    field_class = KeyValueField

    def filter(self, qs, value):
        for key, wanted in value or []:
            match = Q(**{f"{self.field_name}__contains": {key: wanted}})
            if (typed := scalar(wanted)) is not None or wanted == "null":
                match |= Q(**{f"{self.field_name}__contains": {key: typed}})
            qs = qs.filter(match)
        return qs
