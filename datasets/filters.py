"""Query parameters of the dataset lists (contacts, items, interactions, suppressions)."""

import django_filters

from datasets.models import Contact, Interaction, Item, Suppression, SuppressionReason
from saas.filters import AttributeFilter, MomentFilter, StrictBooleanFilter


class ContactFilter(django_filters.FilterSet):
    attr = AttributeFilter(
        field_name="attributes",
        help_text="`key:value`; repeat it to ask for several (all must match), e.g. `?attr=plan:gold&attr=vip:true`.",
    )
    updated_since = MomentFilter(
        field_name="updated_at", lookup_expr="gte", help_text="Changed at or after this moment (ISO 8601)."
    )
    unsubscribed = StrictBooleanFilter(help_text="`true`: only the unsubscribed; `false`: only the subscribed.")
    email = django_filters.CharFilter(lookup_expr="iexact", help_text="This address, in any case.")
    locale = django_filters.CharFilter(help_text="This locale, e.g. `fr_FR`.")

    class Meta:
        model = Contact
        fields = []


class ItemFilter(django_filters.FilterSet):
    genre = django_filters.CharFilter(method="filter_genre", help_text="Items with this genre, e.g. `Comedy`.")
    promotion = StrictBooleanFilter(help_text="Only promoted (`true`) or only other (`false`) items.")

    class Meta:
        model = Item
        fields = []

    def filter_genre(self, queryset, name, value: str):
        return queryset.filter(genres__contains=[value])


class InteractionFilter(django_filters.FilterSet):
    contact = django_filters.CharFilter(field_name="contact__external_id", help_text="The contact's external id.")
    item = django_filters.CharFilter(field_name="item__external_id", help_text="The item's external id.")
    event_type = django_filters.CharFilter(help_text="e.g. `watch`.")
    since = MomentFilter(field_name="timestamp", lookup_expr="gte", help_text="At or after this moment (ISO 8601).")

    class Meta:
        model = Interaction
        fields = []


class SuppressionFilter(django_filters.FilterSet):
    reason = django_filters.ChoiceFilter(choices=SuppressionReason.choices, help_text="Why it is suppressed.")

    class Meta:
        model = Suppression
        fields = []
