"""What an API request costs the database, whatever the page holds: a key in use is written once a minute, not on
every request (50 clients sharing one key queued on its row), and list pages cost a fixed number of queries."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, GeneratedEmail
from campaigns.serializers import GeneratedEmailSerializer
from datasets.models import Contact
from tenants.models import ApiKey

from .conftest import api_client

API = "/api/v1"


def key_writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and '"tenants_apikey"' in q["sql"]]


def test_a_key_in_use_records_its_use_at_most_once_a_minute(tenant):
    client = api_client(tenant)
    key = ApiKey.objects.get(tenant=tenant)
    assert client.get(f"{API}/contacts/").status_code == 200
    first_use = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first_use is not None
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert client.get(f"{API}/contacts/").status_code == 200
    assert key_writes(queries.captured_queries) == []
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first_use

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    assert client.get(f"{API}/contacts/").status_code == 200
    assert timezone.now() - ApiKey.objects.get(pk=key.pk).last_used_at < timedelta(seconds=30)


def test_list_pages_cost_the_same_few_queries_however_many_rows(tenant, django_assert_max_num_queries):
    contacts = Contact.dangerously_unscoped.bulk_create(
        Contact(tenant=tenant, external_id=f"c{i}", email=f"c{i}@example.com", attributes={"plan": "plus"})
        for i in range(60)
    )
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Picks", goal="weekend")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, total=60)
    GeneratedEmail.dangerously_unscoped.bulk_create(
        GeneratedEmail(tenant=tenant, run=run, contact=c, subject="Hi", body="Hello") for c in contacts
    )
    client = api_client(tenant)
    client.get(f"{API}/contacts/")  # the key's use is recorded on the first request
    for url in (f"{API}/contacts/?page_size=50", f"{API}/emails/?run={run.pk}&page_size=50"):
        with django_assert_max_num_queries(2):  # the key, the page
            page = client.get(url).json()
        assert len(page["results"]) == 50
        with django_assert_max_num_queries(2):
            assert len(client.get(page["next"]).json()["results"]) == 10
    assert {e["contact"] for e in client.get(f"{API}/emails/?run={run.pk}&page_size=60").json()["results"]} == {
        f"c{i}" for i in range(60)
    }


def test_an_email_page_reads_only_the_contacts_external_id(tenant):
    contact = Contact.dangerously_unscoped.create(tenant=tenant, external_id="c1", email="c1@example.com",
                                                  attributes={"notes": "x" * 5000})  # fmt: skip
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Picks", goal="weekend")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, total=1)
    email = GeneratedEmail.dangerously_unscoped.create(tenant=tenant, run=run, contact=contact, subject="Hi", body="Yo")
    client = api_client(tenant)
    client.get(f"{API}/contacts/")
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"{API}/emails/?run={run.pk}").json()
    assert [(e["id"], e["contact"], e["subject"], e["body"]) for e in page["results"]] == [(email.pk, "c1", "Hi", "Yo")]
    assert len(queries.captured_queries) == 2
    assert '"datasets_contact"."attributes"' not in queries.captured_queries[-1]["sql"]
    one = client.get(f"{API}/emails/{email.pk}/").json()
    assert (one["contact"], one["subject"]) == ("c1", "Hi")


def test_an_email_page_reads_only_the_columns_it_shows(tenant):
    """The prompt, the original draft, the reviewer's feedback and the checks are not on the page: not read."""
    contact = Contact.dangerously_unscoped.create(tenant=tenant, external_id="c1", email="c1@example.com")
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Picks", goal="weekend")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, total=1)
    GeneratedEmail.dangerously_unscoped.create(tenant=tenant, run=run, contact=contact, subject="Hi", body="Yo",
                                               prompt="p" * 20_000, original_body="o" * 5000)  # fmt: skip
    client = api_client(tenant)
    client.get(f"{API}/contacts/")
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"{API}/emails/?run={run.pk}").json()
    assert len(queries.captured_queries) == 2 and len(page["results"]) == 1
    sql = queries.captured_queries[-1]["sql"]
    for column in ("prompt", "original_body", "feedback", "checks"):
        assert f'"campaigns_generatedemail"."{column}"' not in sql, column
    assert set(page["results"][0]) == set(GeneratedEmailSerializer.Meta.fields)
