"""Every API list has one fixed order, so paging through it shows each row exactly once."""

import pytest

from campaigns.models import Campaign, CampaignRun, GeneratedEmail, PromptTemplate
from datasets.models import Contact

API = "/api/v1"


def key(row: dict) -> str:
    return str(row.get("id", row.get("external_id")))


def pages(client, url: str, *, limit: int) -> list[str]:
    seen, next_url = [], f"{url}{'&' if '?' in url else '?'}page_size={limit}"
    while next_url:
        page = client.get(next_url)
        assert page.status_code == 200, page.content
        seen += [key(row) for row in page.json()["results"]]
        next_url = page.json()["next"]
    return seen


@pytest.fixture
def many_runs(tenant, catalog):
    """Twelve finished runs of one campaign (and emails), their rows then rewritten in another order: PostgreSQL
    puts an updated row at the end of the table, so an unordered query returns them shuffled."""
    campaign = Campaign.objects.for_tenant(tenant).create(tenant=tenant, name="weekly")
    runs = [CampaignRun.objects.for_tenant(tenant).create(tenant=tenant, campaign=campaign, status="completed")
            for _ in range(12)]  # fmt: skip
    for run, contact in zip(runs, catalog[0] * 2, strict=False):
        GeneratedEmail.objects.for_tenant(tenant).create(tenant=tenant, run=run, contact=contact, subject="s")
    for run in runs[::2] + runs[1::2]:
        CampaignRun.objects.for_tenant(tenant).filter(pk=run.pk).update(total=run.pk)
    for contact in catalog[0][::2]:
        Contact.objects.for_tenant(tenant).filter(pk=contact.pk).update(first_name="moved")
    for index in range(5):
        Campaign.objects.for_tenant(tenant).create(tenant=tenant, name=f"c{index}")
        PromptTemplate.objects.for_tenant(tenant).create(tenant=tenant, name=f"t{index}", body="Hi")
    return campaign, runs


def test_the_runs_of_a_campaign_page_newest_first(owner_api, scoped, many_runs):
    campaign, runs = many_runs
    newest_first = [str(run.pk) for run in reversed(runs)]
    assert pages(owner_api, f"{API}/runs/?campaign={campaign.pk}", limit=5) == newest_first
    assert pages(owner_api, f"{API}/runs/", limit=5) == newest_first


@pytest.mark.parametrize("endpoint", ["contacts", "items", "interactions", "templates", "campaigns", "runs", "emails"])
def test_every_list_pages_through_each_row_once_in_a_fixed_order(owner_api, scoped, many_runs, endpoint):
    everything = owner_api.get(f"{API}/{endpoint}/?page_size=1000").json()["results"]
    assert len(everything) > 3  # more rows than a page
    paged = pages(owner_api, f"{API}/{endpoint}/", limit=3)
    assert paged == [key(row) for row in everything] and len(set(paged)) == len(paged)
    assert paged == pages(owner_api, f"{API}/{endpoint}/", limit=2)


def test_every_list_is_ordered_by_a_unique_key_last(tenant):
    """A page boundary is only stable under an ORDER BY that ends in a unique column: each list says so."""
    from django.urls import get_resolver
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from tenants.auth import ApiPrincipal

    lists = [
        p.callback
        for api in get_resolver().url_patterns
        if str(api.pattern) == "api/v1/"
        for p in api.url_patterns
        if "list" in (getattr(p.callback, "actions", None) or {}).values()
    ]
    assert len({view.cls for view in lists}) == 13
    for callback in lists:
        view = callback.cls(action="list", kwargs={}, format_kwarg=None)
        view.request = Request(APIRequestFactory().get("/"))
        view.request.user = ApiPrincipal(tenant=tenant, role="owner", key_name="test")
        queryset = view.filter_queryset(view.get_queryset())
        assert queryset.ordered and queryset.query.order_by[-1] in ("pk", "-pk"), callback.cls
