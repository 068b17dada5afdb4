"""API lists: cursor pages that stay stable while rows are written between fetches, a bounded page size, cursors that
cannot be forged into a 500, and django-filter parameters whose bad values are a 400 in the envelope."""

from base64 import b64encode
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, GeneratedEmail
from datasets.consent import contact_unsubscribe
from datasets.models import ConsentSource, Contact, Suppression

API = "/api/v1"


def key(row: dict) -> str:
    return str(row.get("id", row.get("external_id")))


def walk(client, url: str, *, between=None) -> list[str]:
    """Every row of a list, page by page (`next`), calling `between` after each page."""
    seen, next_url = [], url
    while next_url:
        page = client.get(next_url)
        assert page.status_code == 200, page.content[:300]
        seen += [key(row) for row in page.json()["results"]]
        next_url = page.json()["next"]
        if between and next_url:
            between()
    return seen


def test_contact_pages_skip_and_repeat_nothing_while_contacts_are_added(owner_api, tenant, catalog):
    before = [c.external_id for c in Contact.objects.for_tenant(tenant).order_by("pk")]
    added = []

    def add():
        n = len(added)
        added.append(f"new{n}")
        Contact.objects.for_tenant(tenant).create(tenant=tenant, external_id=f"new{n}", email=f"n{n}@example.com")

    seen = walk(owner_api, f"{API}/contacts/?page_size=2", between=add)
    assert len(seen) == len(set(seen))  # nothing twice
    assert [x for x in seen if x in before] == before  # every earlier row once, in order
    assert set(seen) - set(before) <= set(added)  # rows added after the cursor show up later, none from nowhere


def test_newest_first_pages_stay_put_while_new_runs_arrive(owner_api, tenant):
    campaign = Campaign.objects.for_tenant(tenant).create(tenant=tenant, name="weekly")

    def add_run():
        return CampaignRun.objects.for_tenant(tenant).create(tenant=tenant, campaign=campaign, status="completed")

    runs = [add_run() for _ in range(7)]
    seen = walk(owner_api, f"{API}/runs/?page_size=3", between=add_run)
    assert seen == [str(run.pk) for run in reversed(runs)]  # the new ones are above the first page: not repeated
    first = owner_api.get(f"{API}/runs/?page_size=3").json()
    assert [key(r) for r in first["results"]] == [str(r.pk) for r in CampaignRun.objects.for_tenant(tenant)
                                                  .order_by("-created_at", "-pk")[:3]]  # fmt: skip
    second = owner_api.get(first["next"]).json()
    back = owner_api.get(second["previous"]).json()
    assert back["results"] == first["results"]


def cursor(text: str) -> str:
    return b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "endpoint, value",
    [
        ("contacts", "garbage!"),
        ("contacts", cursor("o=0&p=abc")),  # the position must be a value of the ordering's column (pk)
        ("contacts", cursor("o=0&p=99999999999999999999999")),  # past PostgreSQL's bigint
        ("contacts", cursor("o=5000&p=1")),  # past the offset cutoff
        ("contacts", cursor("o=-1")),
        ("runs", cursor("o=0&r=1&p=not-a-moment")),
        ("suppressions", cursor("o=0&p=2026-13-45")),
    ],
)
def test_a_cursor_this_api_did_not_hand_out_is_a_400(owner_api, catalog, endpoint, value):
    owner_api.raise_request_exception = False
    answer = owner_api.get(f"{API}/{endpoint}/", {"cursor": value})
    assert answer.status_code == 400, answer.content[:300]
    assert answer.json()["error"]["code"] == "validation_error" and "cursor" in answer.json()["error"]["fields"]


def test_a_handed_out_cursor_works_with_the_same_filters(owner_api, catalog):
    first = owner_api.get(f"{API}/interactions/?contact=u0&page_size=1").json()
    assert first["next"] and "contact=u0" in first["next"]
    assert owner_api.get(first["next"]).status_code == 200


@pytest.fixture
def people(tenant, catalog):
    contacts = catalog[0]
    attributes = [{"plan": "gold", "vip": True}, {"plan": "gold", "vip": "true"}, {"plan": "silver", "score": 3},
                  {"plan": "gold", "vip": False}, {}, {"nested": {"plan": "gold"}}]  # fmt: skip
    for contact, attrs in zip(contacts, attributes, strict=True):
        Contact.objects.for_tenant(tenant).filter(pk=contact.pk).update(attributes=attrs)
    return contacts


def ids(answer) -> list[str]:
    assert answer.status_code == 200, answer.content[:300]
    return [row["external_id"] for row in answer.json()["results"]]


def test_contacts_by_attributes(owner_api, people):
    assert ids(owner_api.get(f"{API}/contacts/?attr=plan:gold")) == ["u0", "u1", "u3"]
    assert ids(owner_api.get(f"{API}/contacts/?attr=vip:true")) == ["u0", "u1"]  # true and "true"
    assert ids(owner_api.get(f"{API}/contacts/?attr=plan:gold&attr=vip:false")) == ["u3"]  # all must match
    assert ids(owner_api.get(f"{API}/contacts/?attr=score:3")) == ["u2"]
    assert ids(owner_api.get(f"{API}/contacts/?attr=plan:")) == []
    for odd in ("vip:NaN", "vip:1e999", "vip:" + "9" * 5000, "a:b:c", "plan:[1,2]"):
        assert owner_api.get(f"{API}/contacts/", {"attr": odd}).status_code == 200, odd


@pytest.mark.parametrize("value", ["plan", ":gold", "x\x00:y", "50%", "%s%(x)s"])  # a % once was a 500
def test_a_bad_attribute_filter_is_a_400(owner_api, people, value):
    answer = owner_api.get(f"{API}/contacts/", {"attr": value})
    assert answer.status_code == 400 and "attr" in answer.json()["error"]["fields"], answer.content[:300]


def test_contacts_updated_since_and_unsubscribed(owner_api, tenant, people):
    long_ago = timezone.now() - timedelta(days=30)
    Contact.objects.for_tenant(tenant).update(updated_at=long_ago)
    since = (long_ago + timedelta(days=1)).isoformat()
    assert ids(owner_api.get(f"{API}/contacts/", {"updated_since": since})) == []
    owner_api.patch(f"{API}/contacts/u4/", {"first_name": "Changed"}, format="json")
    contact_unsubscribe(contact=people[2], source=ConsentSource.API, by="test")  # a consent change is a change
    assert ids(owner_api.get(f"{API}/contacts/", {"updated_since": since})) == ["u2", "u4"]
    assert ids(owner_api.get(f"{API}/contacts/?unsubscribed=true")) == ["u2"]
    assert "u2" not in ids(owner_api.get(f"{API}/contacts/?unsubscribed=false"))
    for bad in ({"updated_since": "yesterday"}, {"unsubscribed": "maybe"}, {"updated_since": "2026-02-30T00:00:00Z"}):
        answer = owner_api.get(f"{API}/contacts/", bad)
        assert answer.status_code == 400 and set(answer.json()["error"]["fields"]) == set(bad), answer.content


@pytest.fixture
def emails(tenant, other_tenant, catalog, other_catalog):
    """Two campaigns, three runs and emails written by two models; one run of the other tenant."""
    made = {}
    for name, runs in (("spring", 2), ("summer", 1)):
        campaign = Campaign.objects.for_tenant(tenant).create(tenant=tenant, name=name)
        for r in range(runs):
            status = "completed" if r else "running"
            run = CampaignRun.objects.for_tenant(tenant).create(tenant=tenant, campaign=campaign, status=status)
            for i, contact in enumerate(catalog[0][:3]):
                GeneratedEmail.objects.for_tenant(tenant).create(
                    tenant=tenant, run=run, contact=contact, subject="s", status="approved" if i else "draft",
                    model_key="nova-lite" if i < 2 else "claude-haiku",
                )  # fmt: skip
            made[(name, r)] = run
    their_campaign = Campaign.dangerously_unscoped.create(tenant=other_tenant, name="theirs")
    made["theirs"] = CampaignRun.dangerously_unscoped.create(tenant=other_tenant, campaign=their_campaign)
    return made


def rows(answer) -> list[dict]:
    assert answer.status_code == 200, answer.content[:300]
    return answer.json()["results"]


def test_emails_by_run_campaign_status_and_model(owner_api, emails):
    run = emails[("spring", 0)]
    assert {e["run"] for e in rows(owner_api.get(f"{API}/emails/?run={run.pk}"))} == {run.pk}
    spring = rows(owner_api.get(f"{API}/emails/?campaign={run.campaign_id}&page_size=1000"))
    assert len(spring) == 6 and {e["run"] for e in spring} == {run.pk, emails[("spring", 1)].pk}
    drafts = rows(owner_api.get(f"{API}/emails/?status=draft&campaign={run.campaign_id}"))
    assert len(drafts) == 2 and {e["status"] for e in drafts} == {"draft"}
    haiku = rows(owner_api.get(f"{API}/emails/?model=claude-haiku&run={run.pk}"))
    assert len(haiku) == 1 and haiku[0]["model_key"] == "claude-haiku"
    assert rows(owner_api.get(f"{API}/emails/?run={emails['theirs'].pk}")) == []  # another tenant's: nothing


def test_runs_by_campaign_and_status(owner_api, emails):
    spring = emails[("spring", 0)].campaign_id
    assert [r["id"] for r in rows(owner_api.get(f"{API}/runs/?campaign={spring}"))] == [
        emails[("spring", 1)].pk, emails[("spring", 0)].pk]  # fmt: skip
    running = rows(owner_api.get(f"{API}/runs/?status=running"))
    assert {r["status"] for r in running} == {"running"} and len(running) == 2
    assert rows(owner_api.get(f"{API}/runs/?campaign={emails['theirs'].campaign_id}")) == []


@pytest.mark.parametrize(
    "endpoint, query, field",
    [
        ("emails", "run=abc", "run"),
        ("emails", "run=99999999999999999999", "run"),
        ("emails", "run=-3", "run"),
        ("emails", "campaign=1.5", "campaign"),
        ("emails", "status=lost", "status"),
        ("runs", "status=sleeping", "status"),
        ("runs", "campaign=x", "campaign"),
        ("suppressions", "reason=boredom", "reason"),
        ("items", "promotion=perhaps", "promotion"),
        ("interactions", "since=soon", "since"),
        ("templates", "name=a%00b", "name"),
    ],
)
def test_a_bad_filter_value_is_a_400_naming_it(owner_api, catalog, endpoint, query, field):
    owner_api.raise_request_exception = False
    answer = owner_api.get(f"{API}/{endpoint}/?{query}")
    assert answer.status_code == 400, answer.content[:300]
    assert answer.json()["error"]["code"] == "validation_error" and field in answer.json()["error"]["fields"]


def test_the_other_lists_filter_too(owner_api, tenant, catalog):
    items = catalog[1]
    genre = items[0].genres[0]
    listed = rows(owner_api.get(f"{API}/items/", {"genre": genre, "page_size": 1000}))
    assert listed and all(genre in item["genres"] for item in listed)
    assert {i["contact"] for i in rows(owner_api.get(f"{API}/interactions/?contact=u1"))} == {"u1"}
    owner_api.post(f"{API}/suppressions/", [{"address": "a@example.com", "reason": "complaint"}, "b@example.com"],
                   format="json")  # fmt: skip
    assert [s["address"] for s in rows(owner_api.get(f"{API}/suppressions/?reason=complaint"))] == ["a@example.com"]
    assert Suppression.objects.for_tenant(tenant).count() == 2
    owner_api.post(f"{API}/campaigns/", {"name": "Spring sale"}, format="json")
    owner_api.post(f"{API}/campaigns/", {"name": "Winter"}, format="json")
    assert [c["name"] for c in rows(owner_api.get(f"{API}/campaigns/?name=spring"))] == ["Spring sale"]


@pytest.mark.parametrize("param, endpoint", [("since", "interactions"), ("updated_since", "contacts")])
@pytest.mark.parametrize(
    "moment", ["0137-05-02T11:15:42+18:13", "2026-01-01T00:00:00-23:59", "0001-01-01T00:00:00+01:00"]
)
def test_a_moment_with_any_valid_offset_is_not_a_500(owner_api, catalog, param, endpoint, moment):
    """Found by schemathesis: ISO 8601 allows offsets up to ±23:59, PostgreSQL only ±15:59 (a DataError, a 500)."""
    owner_api.raise_request_exception = False
    answer = owner_api.get(f"{API}/{endpoint}/", {param: moment})
    assert answer.status_code in (200, 400), answer.content[:300]
    if answer.status_code == 400:
        assert param in answer.json()["error"]["fields"]


def test_an_import_that_changes_a_contact_moves_it_into_updated_since(owner_api, tenant, catalog, tmp_path):
    from datasets.importers import import_users

    long_ago = timezone.now() - timedelta(days=30)
    Contact.objects.for_tenant(tenant).update(updated_at=long_ago)
    path = tmp_path / "users.csv"
    path.write_text("USER_ID,EMAIL,FIRST_NAME\nu3,user3@example.com,Renamed\nfresh,fresh@example.com,New\n")
    import_users(path, tenant=tenant)
    since = (long_ago + timedelta(days=1)).isoformat()
    assert ids(owner_api.get(f"{API}/contacts/", {"updated_since": since})) == ["u3", "fresh"]
