"""Query parameters of the campaign lists (templates, campaigns, runs, emails)."""

import django_filters

from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, PromptTemplate, RunStatus
from saas.filters import IdFilter


class PromptTemplateFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Templates whose name contains this.")

    class Meta:
        model = PromptTemplate
        fields = []


class CampaignFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Campaigns whose name contains this.")

    class Meta:
        model = Campaign
        fields = []


class CampaignRunFilter(django_filters.FilterSet):
    campaign = IdFilter(field_name="campaign_id", help_text="The campaign's id.")
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)

    class Meta:
        model = CampaignRun
        fields = []


class GeneratedEmailFilter(django_filters.FilterSet):
    run = IdFilter(field_name="run_id", help_text="The run's id.")
    campaign = IdFilter(field_name="run__campaign_id", help_text="The campaign's id (any of its runs).")
    status = django_filters.ChoiceFilter(choices=EmailStatus.choices)
    model = django_filters.CharFilter(field_name="model_key", help_text="The model that wrote it, e.g. `nova-lite`.")

    class Meta:
        model = GeneratedEmail
        fields = []
