"""The admin's tenant switcher: a staff member in two tenants works in one at a time, and every list, form,
foreign-key choice and filter then holds that tenant's rows only; a tenant the user is not in is refused."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, PromptTemplate
from datasets.models import Contact
from tenants.models import Role
from tenants.services import membership_add, tenant_create
from tenants.switcher import SESSION_KEY


@pytest.fixture
def two_tenants(tenant, other_tenant, catalog, other_catalog):
    """Templates and campaigns in both tenants, and Mia, a marketer in both."""
    for t in (tenant, other_tenant):
        template = PromptTemplate.dangerously_unscoped.create(tenant=t, name=f"{t.slug} template", body="Hi")
        Campaign.dangerously_unscoped.create(tenant=t, name=f"{t.slug} picks", template=template)
    membership_add(tenant=tenant, username="mia", role=Role.MARKETER)
    membership_add(tenant=other_tenant, username="mia", role=Role.MARKETER)
    client = Client()
    client.force_login(get_user_model().objects.get(username="mia"))
    return client


def switch(client, tenant_id, next_url="/admin/"):
    return client.post(reverse("tenant_switch"), {"tenant": tenant_id, "next": next_url})


def select(html: str, name: str) -> str:
    found = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    return found.group(0) if found else ""


def test_the_header_offers_the_members_tenants(two_tenants, tenant, other_tenant):
    tenant_create(slug="initech", name="Initech")  # not hers
    page = two_tenants.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    switcher = re.search(r'<form id="tenant-switcher".*?</form>', page, re.S).group(0)
    assert 'name="csrfmiddlewaretoken"' in switcher
    assert tenant.name in switcher and other_tenant.name in switcher and "Initech" not in switcher
    assert 'value="all" selected' in switcher


def test_lists_forms_and_foreign_keys_follow_the_switch(two_tenants, tenant, other_tenant):
    client = two_tenants
    campaigns = reverse("admin:campaigns_campaign_changelist")
    both = client.get(campaigns).content.decode()
    assert "acme picks" in both and "globex picks" in both

    answer = switch(client, other_tenant.pk, campaigns)
    assert answer.status_code == 302 and answer["Location"] == campaigns
    assert client.session[SESSION_KEY] == other_tenant.pk
    page = client.get(campaigns).content.decode()
    assert "globex picks" in page and "acme picks" not in page
    assert f'value="{other_tenant.pk}" selected' in page
    # The add form: its tenant and template choices are the chosen tenant's only.
    form = client.get(reverse("admin:campaigns_campaign_add")).content.decode()
    tenants = select(form, "tenant")
    assert f'value="{other_tenant.pk}"' in tenants and f'value="{tenant.pk}"' not in tenants
    assert "globex template" in select(form, "template") and "acme template" not in select(form, "template")
    # Another tenant's row is not there, as for an outsider; lists of other models follow too.
    acme = Campaign.dangerously_unscoped.get(tenant=tenant)
    assert client.get(reverse("admin:campaigns_campaign_change", args=[acme.pk])).status_code == 404
    contacts = client.get(reverse("admin:datasets_contact_changelist")).content.decode()
    assert "guser0@example.com" in contacts and "user0@example.com" not in contacts.replace("guser0@", "")
    # The tenant filter offers only the chosen tenant.
    filters = re.search(r'<nav id="changelist-filter".*?</nav>', page, re.S)
    assert filters is None or tenant.name not in filters.group(0)

    switch(client, tenant.pk)
    page = client.get(campaigns).content.decode()
    assert "acme picks" in page and "globex picks" not in page
    switch(client, "all")
    assert SESSION_KEY not in client.session
    page = client.get(campaigns).content.decode()
    assert "acme picks" in page and "globex picks" in page


def test_a_change_form_offers_only_the_chosen_tenants_rows(two_tenants, tenant, other_tenant):
    client = two_tenants
    switch(client, other_tenant.pk)
    globex = Campaign.dangerously_unscoped.get(tenant=other_tenant)
    form = client.get(reverse("admin:campaigns_campaign_change", args=[globex.pk])).content.decode()
    assert "globex template" in select(form, "template") and "acme template" not in select(form, "template")


def test_a_tenant_one_is_not_in_is_refused(two_tenants, tenant, other_tenant):
    client = two_tenants
    initech = tenant_create(slug="initech", name="Initech")
    switch(client, tenant.pk)
    for choice in (initech.pk, 999999):  # a tenant of others, and one that does not exist: the same answer
        answer = switch(client, choice)
        assert answer.status_code == 403 and "not one of your tenants" in answer.content.decode().lower()
        assert client.session[SESSION_KEY] == tenant.pk  # nothing changed
    answer = switch(client, "acme")
    assert answer.status_code == 400 and "Choose a tenant" in answer.content.decode()
    assert client.get(reverse("tenant_switch")).status_code == 405  # a switch is a POST


def test_the_switch_needs_the_csrf_token(two_tenants, other_tenant):
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="mia"))
    assert switch(client, other_tenant.pk).status_code == 403
    assert SESSION_KEY not in client.session


def test_an_ended_membership_ends_the_choice(two_tenants, tenant, other_tenant):
    client = two_tenants
    switch(client, other_tenant.pk)
    from tenants.models import Membership

    Membership.objects.filter(tenant=other_tenant, user__username="mia").delete()
    page = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "acme picks" in page and "globex picks" not in page
    assert SESSION_KEY not in client.session


def test_only_staff_switch(tenant, client):
    answer = client.post(reverse("tenant_switch"), {"tenant": tenant.pk})
    assert answer.status_code == 302 and "/login/" in answer["Location"]


def test_a_superuser_switches_to_any_tenant_and_back_to_all(two_tenants, tenant, other_tenant):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get(reverse("admin:index")).content.decode()
    assert "All tenants" in page and tenant.name in page and other_tenant.name in page
    contacts = reverse("admin:datasets_contact_changelist")
    assert switch(client, tenant.pk).status_code == 302
    listing = client.get(contacts)
    assert listing.context["cl"].result_count == Contact.dangerously_unscoped.filter(tenant=tenant).count()
    form = client.get(reverse("admin:campaigns_campaign_add")).content.decode()
    tenants = select(form, "tenant")
    assert f'value="{tenant.pk}"' in tenants and f'value="{other_tenant.pk}"' not in tenants
    switch(client, "all")
    assert client.get(contacts).context["cl"].result_count == Contact.dangerously_unscoped.count()
    assert switch(client, 999999).status_code == 403


def test_filters_offer_only_the_chosen_tenants_values(two_tenants, tenant, other_tenant):
    from routing.models import LLMCall

    for t, model in ((tenant, "acme-model"), (other_tenant, "globex-model")):
        LLMCall.dangerously_unscoped.create(tenant=t, task="marketing_email", model_key=model, provider="local",
                                            model_id=model, route_reason="test")  # fmt: skip
    url = reverse("admin:routing_llmcall_changelist")

    def panel() -> str:
        return re.search(r'<nav id="changelist-filter".*?</nav>', two_tenants.get(url).content.decode(), re.S)[0]

    assert "acme-model" in panel() and "globex-model" in panel()
    switch(two_tenants, other_tenant.pk)
    assert "globex-model" in panel() and "acme-model" not in panel()
