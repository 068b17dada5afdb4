"""Admin pages must not tell one tenant's staff what exists elsewhere: a history page answers the same for a row
the user may not see as for an id that does not exist."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tenants.models import Role
from tenants.services import membership_add


def existing_row(model, other_tenant):
    """A row the staff member of `tenant` may not see: another tenant's, or any row of a model that is not theirs."""
    manager = getattr(model, "dangerously_unscoped", model._default_manager)
    rows = manager.all()
    if hasattr(model, "tenant_id"):
        rows = rows.filter(tenant=other_tenant)
    elif model._meta.model_name == "tenant":
        rows = rows.filter(pk=other_tenant.pk)
    return rows.order_by("pk").first()


@pytest.mark.parametrize("role", [Role.OWNER, Role.REVIEWER])
def test_a_history_page_answers_alike_for_a_hidden_row_and_a_missing_id(tenant, other_tenant, role, client):
    from campaigns.models import Campaign
    from campaigns.schedules import campaign_schedule

    gil = membership_add(tenant=other_tenant, username="gil", role=Role.OWNER).user
    their_campaign = Campaign.dangerously_unscoped.create(tenant=other_tenant, name="theirs")
    campaign_schedule(campaign=their_campaign, cron="0 9 * * 1")
    client.force_login(membership_add(tenant=tenant, username="rita", role=role, password="pw-rita-123").user)
    checked = []
    for model in admin.site._registry:
        row = gil if model._meta.model_name == "user" else existing_row(model, other_tenant)
        if row is None:
            continue
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_history"
        hidden = client.get(reverse(name, args=[row.pk]))
        missing = client.get(reverse(name, args=[987654321]))
        assert hidden.status_code == missing.status_code, (name, hidden.status_code, missing.status_code)
        checked.append(model._meta.model_name)
    assert {"user", "periodictask", "crontabschedule", "campaign", "tenant"} <= set(checked)
    mine = Campaign.dangerously_unscoped.create(tenant=tenant, name="mine")
    assert client.get(reverse("admin:campaigns_campaign_history", args=[mine.pk])).status_code == 200
