"""The REST API: CRUD works for the key's tenant; another tenant's objects are invisible (404); roles hold."""

import pytest

from campaigns.models import (
    Campaign,
    CampaignRun,
    DeliveryReport,
    EmailEvent,
    EmailStatus,
    GeneratedEmail,
    PromptTemplate,
)
from datasets.models import Contact, Interaction, Suppression
from datasets.suppression import address_suppress
from routing.models import LLMCall
from saas.urls import router
from tenants.models import ApiKey
from webhooks.models import WebhookEndpoint

API = "/api/v1"


@pytest.fixture
def theirs(other_tenant, other_catalog):
    """One object of every kind, owned by the other tenant."""
    contacts, items = other_catalog
    template = PromptTemplate.dangerously_unscoped.create(
        tenant=other_tenant, name="theirs", body="Hi {{ contact.first_name }}"
    )
    campaign = Campaign.dangerously_unscoped.create(tenant=other_tenant, name="theirs", template=template)
    run = CampaignRun.dangerously_unscoped.create(tenant=other_tenant, campaign=campaign, status="completed", total=1)
    email = GeneratedEmail.dangerously_unscoped.create(
        tenant=other_tenant,
        run=run,
        contact=contacts[0],
        subject="Secret",
        body="Secret body",
        status=EmailStatus.DRAFT,
    )
    interaction = Interaction.dangerously_unscoped.filter(tenant=other_tenant).first()
    address_suppress(tenant_id=other_tenant.pk, address="secret@theirs.example", reason="complaint", source="ses",
                     by="ses")  # fmt: skip
    suppression = Suppression.dangerously_unscoped.get(tenant=other_tenant)
    webhook = WebhookEndpoint.dangerously_unscoped.create(tenant=other_tenant, url="https://theirs.example/hook")
    report = DeliveryReport.dangerously_unscoped.create(
        tenant=other_tenant, email=email, address="secret@theirs.example", kind="complaint", provider="theirs"
    )
    event = EmailEvent.record(
        email, "rejected", by="Secret Sam", status=EmailStatus.REJECTED, detail={"reason": "theirs"}
    )
    LLMCall.dangerously_unscoped.create(tenant=other_tenant, task="marketing_email", model_key="theirs/secret-model",
                                        provider="local", model_id="m", route_reason="Secret", campaign_id=campaign.pk)  # fmt: skip
    key, _ = ApiKey.objects.issue(tenant=other_tenant, name="Secret key")
    return {
        "contacts": contacts[0].external_id, "items": items[0].external_id, "interactions": interaction.pk,
        "templates": template.pk, "campaigns": campaign.pk, "runs": run.pk, "emails": email.pk,
        "suppressions": suppression.pk, "webhooks": webhook.pk, "delivery-reports": report.pk,
        "audit-log": event.pk, "usage": campaign.pk, "api-keys": key.pk,
    }  # fmt: skip


def test_requests_without_a_valid_key_are_refused(db):
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.get(f"{API}/contacts/").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION="Bearer ms_nope_nope")
    assert client.get(f"{API}/contacts/").status_code == 401


def detail_actions(endpoint: str) -> list[tuple[str, str]]:
    """(method, url path) of every detail action the router serves for `endpoint`: read from the viewsets, so an
    action added later is covered without anyone listing it here."""
    viewset = {prefix: viewset for prefix, viewset, _ in router.registry}[endpoint]
    return [
        (method, extra.url_path) for extra in viewset.get_extra_actions() if extra.detail for method in extra.mapping
    ]


def test_the_ownership_walk_covers_every_endpoint_and_action():
    assert sorted(prefix for prefix, _, _ in router.registry) == sorted(ENDPOINTS)
    walked = {path for endpoint in ENDPOINTS for _, path in detail_actions(endpoint)}
    assert walked >= {"launch", "schedule", "send", "cancel", "approve", "reject", "edit", "regenerate"}
    assert walked >= {"mark_sent", "send_again", "unsubscribe", "resubscribe", "consent"}
    assert walked >= {"preview", "test_send", "revoke"}


ENDPOINTS = ["contacts", "items", "interactions", "templates", "campaigns", "runs", "emails", "suppressions",
             "webhooks", "delivery-reports", "audit-log", "usage", "api-keys"]  # fmt: skip


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_validates_ownership(endpoint, owner_api, catalog, theirs):
    """Another tenant's object: absent from lists, 404 on read, write, delete and every action."""
    listing = owner_api.get(f"{API}/{endpoint}/")
    assert listing.status_code == 200
    assert "Secret" not in listing.content.decode() and "theirs" not in listing.content.decode()
    assert str(theirs[endpoint]) not in {
        str(row.get("id", row.get("external_id"))) for row in listing.json()["results"]
    }
    url = f"{API}/{endpoint}/{theirs[endpoint]}/"
    assert owner_api.get(url).status_code == 404
    assert owner_api.patch(url, {"name": "x"}, format="json").status_code in (404, 405)
    assert owner_api.delete(url).status_code in (404, 405)
    for action in ("launch", "schedule", "send", "cancel", "approve", "reject", "edit", "regenerate"):
        assert (
            owner_api.post(url + f"{action}/", {"reason": "x", "subject": "s", "body": "b"}, format="json").status_code
            == 404
        )
    body = {"reason": "x", "subject": "s", "body": "b", "note": "n", "consent": "c", "cron": "0 9 * * 1"}
    for method, path in detail_actions(endpoint):
        answer = getattr(owner_api, method)(url + f"{path}/", body, format="json")
        assert answer.status_code == 404, (method, path, answer.status_code)


def test_contacts_crud(owner_api, tenant):
    created = owner_api.post(
        f"{API}/contacts/", {"external_id": "c1", "email": "c1@example.com", "first_name": "Cat"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert owner_api.get(f"{API}/contacts/c1/").json()["first_name"] == "Cat"
    assert owner_api.patch(f"{API}/contacts/c1/", {"unsubscribed": True}, format="json").json()["unsubscribed"] is True
    dup = owner_api.post(f"{API}/contacts/", {"external_id": "c1", "email": "x@example.com"}, format="json")
    assert dup.status_code == 400 and "already used" in str(dup.json())
    bad = owner_api.post(f"{API}/contacts/", {"external_id": "c2", "email": "nope"}, format="json")
    assert bad.status_code == 400 and "email" in bad.json()["error"]["fields"]
    assert owner_api.delete(f"{API}/contacts/c1/").status_code == 204
    assert not Contact.objects.for_tenant(tenant).exists()


def test_the_same_external_id_may_exist_in_two_tenants(owner_api, outsider_api):
    for client in (owner_api, outsider_api):
        assert (
            client.post(
                f"{API}/contacts/", {"external_id": "same", "email": "s@example.com"}, format="json"
            ).status_code
            == 201
        )


def test_interactions_refer_to_the_tenants_own_contacts_and_items(owner_api, catalog, theirs):
    good = {"contact": "u0", "item": "m1", "event_type": "watch", "timestamp": "2025-06-01T10:00:00Z"}
    assert owner_api.post(f"{API}/interactions/", good, format="json").status_code == 201
    foreign = {**good, "item": theirs["items"]}
    response = owner_api.post(f"{API}/interactions/", foreign, format="json")
    assert response.status_code == 400 and "item" in response.json()["error"]["fields"]


def test_bulk_interactions_keep_good_rows_and_report_bad_ones(owner_api, tenant, catalog):
    before = Interaction.objects.for_tenant(tenant).count()
    rows = [
        {"contact": "u0", "item": "m5", "timestamp": "2025-06-01T10:00:00Z"},
        {"contact": "nobody", "item": "m5", "timestamp": "2025-06-01T10:00:00Z"},
        {"contact": "u1", "item": "m6", "timestamp": "not a date"},
        {"contact": "u1", "item": "m7", "timestamp": "2025-06-02T10:00:00Z"},
    ]
    response = owner_api.post(f"{API}/interactions/", rows, format="json")
    assert response.status_code == 207
    body = response.json()
    assert (body["created"], body["rejected"]) == (2, 2)
    assert [e["index"] for e in body["errors"]] == [1, 2]
    assert Interaction.objects.for_tenant(tenant).count() == before + 2
    too_many = owner_api.post(f"{API}/interactions/", [rows[0]] * 1001, format="json")
    assert too_many.status_code == 400 and "at most 1000" in too_many.json()["error"]["message"]


def test_campaign_template_must_belong_to_the_tenant(owner_api, theirs):
    response = owner_api.post(f"{API}/campaigns/", {"name": "c", "template": theirs["templates"]}, format="json")
    assert response.status_code == 400 and "does not exist" in str(response.json()["error"]["fields"]["template"])


def test_hostile_templates_are_refused_with_a_reason(owner_api):
    cases = {
        "{{ ''.__class__.__mro__ }}": "sandbox",
        "{% for x in %}": "syntax error on line 1",
        "{{ 'x' * 100000000 }}": "repetition too large",
        "{{ unknown_variable }}": "undefined",
    }
    for body, reason in cases.items():
        response = owner_api.post(f"{API}/templates/", {"name": body[:20], "body": body}, format="json")
        assert response.status_code == 400, body
        assert reason in str(response.json()["error"]["fields"]["body"]), (body, response.json())


def test_campaign_audience_is_validated(owner_api):
    response = owner_api.post(f"{API}/campaigns/", {"name": "c", "audience": {"planet": "Mars"}}, format="json")
    assert response.status_code == 400 and "unknown audience keys" in str(response.json())
    assert owner_api.post(f"{API}/campaigns/", {"name": "c", "n_items": 11}, format="json").status_code == 400


def test_reviewers_can_read_and_review_but_not_change_data(reviewer_api, catalog):
    assert reviewer_api.get(f"{API}/contacts/").status_code == 200
    response = reviewer_api.post(f"{API}/contacts/", {"external_id": "r1", "email": "r@example.com"}, format="json")
    assert response.status_code == 403


def test_oversized_payloads_are_refused(owner_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = owner_api.post(
        f"{API}/contacts/",
        {"external_id": "big", "email": "b@example.com", "attributes": {"x": "y" * 20_000}},
        format="json",
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_review_actions_through_the_api(
    bedrock_settings, owner_api, reviewer_api, tenant, catalog, django_capture_on_commit_callbacks
):
    from campaigns import generation, services, tasks
    from tenants.scoping import tenant_scope

    campaign = Campaign.objects.for_tenant(tenant).create(tenant=tenant, name="api review")
    run = services.campaign_launch(campaign=campaign, limit=3)
    with tenant_scope(tenant):
        for chunk in services.run_start(run=run, limit=3):
            generation.run_generate_chunk(run=run, contact_ids=chunk)
    first, second, third = GeneratedEmail.objects.for_tenant(tenant).order_by("pk")
    listing = reviewer_api.get(f"{API}/emails/?run={run.pk}&status=draft").json()
    assert len(listing["results"]) == 3 and listing["results"][0]["subject"]
    assert reviewer_api.post(f"{API}/emails/{first.pk}/approve/").json()["status"] == "approved"
    assert reviewer_api.post(f"{API}/emails/{first.pk}/approve/").status_code == 409
    assert reviewer_api.post(f"{API}/emails/{second.pk}/reject/", {}, format="json").status_code == 400
    rejected = reviewer_api.post(f"{API}/emails/{second.pk}/reject/", {"reason": "tone"}, format="json").json()
    assert (rejected["status"], rejected["reject_reason"]) == ("rejected", "tone")
    with django_capture_on_commit_callbacks() as dispatched:
        queued = reviewer_api.post(f"{API}/emails/{second.pk}/regenerate/")
    assert (queued.status_code, queued.json()["status"], len(dispatched)) == (202, "regenerating", 1)
    tasks.email_regenerate(second.pk, tenant.pk)  # what the worker runs, here in-process
    regenerated = reviewer_api.get(f"{API}/emails/{second.pk}/").json()
    assert (regenerated["status"], regenerated["reject_reason"]) == ("draft", "")
    edited = reviewer_api.post(f"{API}/emails/{third.pk}/edit/", {"subject": "S", "body": "B"}, format="json").json()
    assert (edited["status"], edited["subject"], edited["edited"]) == ("approved", "S", True)
    assert owner_api.get(f"{API}/runs/{run.pk}/").json()["generated"] == 3


def test_launch_schedule_and_cancel_through_the_api(owner_api, tenant, catalog, django_capture_on_commit_callbacks):
    from django_celery_beat.models import PeriodicTask

    campaign = owner_api.post(f"{API}/campaigns/", {"name": "weekly", "n_items": 2}, format="json").json()
    with django_capture_on_commit_callbacks() as dispatched:
        launched = owner_api.post(f"{API}/campaigns/{campaign['id']}/launch/", {"limit": 2}, format="json")
    assert launched.status_code == 202 and launched.json()["status"] == "queued" and len(dispatched) == 1
    again = owner_api.post(f"{API}/campaigns/{campaign['id']}/launch/", {}, format="json")
    assert again.status_code == 409 and "already has an active run" in again.json()["error"]["message"]
    run_id = launched.json()["id"]
    assert owner_api.post(f"{API}/runs/{run_id}/cancel/").json()["status"] == "cancelled"
    assert owner_api.post(f"{API}/runs/{run_id}/cancel/").status_code == 409

    bad = owner_api.post(f"{API}/campaigns/{campaign['id']}/schedule/", {"cron": "every monday"}, format="json")
    assert bad.status_code == 400 and "5 fields" in str(bad.json())
    ok = owner_api.post(f"{API}/campaigns/{campaign['id']}/schedule/", {"cron": "0 9 * * 1"}, format="json")
    assert ok.status_code == 201
    task = PeriodicTask.objects.get()
    assert task.task == "campaigns.tasks.campaign_launch" and str(task.crontab.hour) == "9"
    assert owner_api.delete(f"{API}/campaigns/{campaign['id']}/schedule/").status_code == 204
    assert not PeriodicTask.objects.exists()


def test_scheduled_launch_skips_while_a_run_is_active(bedrock_settings, tenant, catalog):
    from campaigns import tasks

    campaign = Campaign.objects.for_tenant(tenant).create(tenant=tenant, name="cron")
    first = tasks.campaign_launch(campaign.pk, tenant.pk)
    assert CampaignRun.objects.for_tenant(tenant).get(pk=first).status == "queued"
    assert tasks.campaign_launch(campaign.pk, tenant.pk) is None
    assert tasks.campaign_launch(campaign.pk + 999, tenant.pk) is None


def test_a_duplicate_interaction_is_a_409_naming_the_stored_row(owner_api, tenant, catalog):
    row = {"contact": "u0", "item": "m5", "event_type": "watch", "timestamp": "2025-06-01T10:00:00Z"}
    first = owner_api.post(f"{API}/interactions/", row, format="json")
    assert first.status_code == 201
    again = owner_api.post(f"{API}/interactions/", {**row, "timestamp": "2025-06-01T12:00:00+02:00"}, format="json")
    assert again.status_code == 409
    assert again.json() == {
        "error": {
            "code": "conflict",
            "message": "this interaction is already stored",
            "details": {"duplicate_of": first.json()["id"]},
        }
    }


def test_bulk_interactions_keep_good_rows_and_report_duplicates_per_row(owner_api, tenant, catalog):
    stored = Interaction.objects.for_tenant(tenant).select_related("contact", "item").first()
    rows = [
        {"contact": "u0", "item": "m5", "timestamp": "2025-06-01T10:00:00Z"},
        {"contact": stored.contact.external_id, "item": stored.item.external_id, "timestamp": stored.timestamp},
        {"contact": "u0", "item": "m5", "timestamp": "2025-06-01T10:00:00Z"},
        {"contact": "u1", "item": "m6", "timestamp": "2025-06-02T10:00:00Z"},
    ]
    response = owner_api.post(f"{API}/interactions/", rows, format="json")
    assert response.status_code == 207
    body = response.json()
    assert (body["created"], body["rejected"]) == (2, 2)
    assert [(e["index"], e.get("duplicate_of")) for e in body["errors"]] == [(1, stored.pk), (2, body["ids"][0])]
    assert all(e["errors"] == {"detail": "this interaction is already stored"} for e in body["errors"])


NUL = "\u0000"


@pytest.mark.parametrize(
    "method, path, payload",
    [
        ("get", "contacts/%00/", None),
        ("get", "items/%00/", None),
        ("delete", "contacts/u%00/", None),
        ("post", "contacts/", {"external_id": "n1", "email": "n@example.com", "attributes": {"a": f"x{NUL}y"}}),
        ("post", "contacts/", {"external_id": "n2", "email": "n@example.com", "attributes": {f"a{NUL}": "y"}}),
        ("post", "contacts/", {"external_id": "n3", "email": "n@example.com", "attributes": [1, 2]}),
        ("post", "items/", {"external_id": "i1", "title": "t", "metadata": {"k": [f"{NUL}"]}}),
        ("post", "items/", {"external_id": "i2", "title": "t", "metadata": "not an object"}),
        ("patch", "items/m1/", {"metadata": {"deep": {"er": NUL}}}),
        ("post", "interactions/", {"contact": f"u{NUL}", "item": "m1", "timestamp": "2025-01-01T00:00:00Z"}),
        ("post", "interactions/", [{"contact": "u0", "item": f"m{NUL}", "timestamp": "2025-01-01T00:00:00Z"}]),
        ("post", "contacts/", "[" * 50_000 + "]" * 50_000),
        ("post", "interactions/", '{"contact": "u0", "item": "m1", "timestamp": ' + "[" * 50_000 + "]" * 50_000 + "}"),
    ],
)
def test_hostile_dataset_input_is_a_4xx_never_a_500(owner_api, catalog, method, path, payload):
    owner_api.raise_request_exception = False
    call = getattr(owner_api, method)
    if isinstance(payload, str):
        response = call(f"{API}/{path}", data=payload, content_type="application/json")
    else:
        response = call(f"{API}/{path}", payload, format="json") if payload is not None else call(f"{API}/{path}")
    if isinstance(payload, list):  # a list is answered row by row (207): the bad row says why
        assert response.status_code == 207, response.content[:300]
        assert "null character" in str(response.json()["errors"]).lower(), response.json()
        return
    assert 400 <= response.status_code < 500, response.content[:300]
    if response.status_code == 400:
        assert (
            "null character" in str(response.json()).lower()
            or "object" in str(response.json()).lower()
            or ("json parse error" in str(response.json()).lower())
        ), response.json()


def test_api_dataset_values_follow_the_import_rules(owner_api, catalog):
    row = {"contact": "u0", "item": "m1", "timestamp": "2999-01-01T00:00:00Z"}
    future = owner_api.post(f"{API}/interactions/", row, format="json")
    assert future.status_code == 400 and "in the future" in str(future.json()["error"]["fields"]["timestamp"])
    old = owner_api.post(f"{API}/interactions/", {**row, "timestamp": "1969-07-20T20:17:00Z"}, format="json")
    assert old.status_code == 400 and "before 1970" in str(old.json()["error"]["fields"]["timestamp"])
    item = {"external_id": "z", "title": "t", "imdb_rating": 1e308, "creation_timestamp": "2999-01-01T00:00:00Z"}
    bad = owner_api.post(f"{API}/items/", item, format="json").json()["error"]["fields"]
    assert "imdb_rating" in bad and "in the future" in str(bad["creation_timestamp"])


@pytest.mark.parametrize("query", ["page_size=100000000000000000000000", "page_size=1001", "page_size=-1",
                                   "page_size=0", "page_size=ten"])  # fmt: skip
def test_list_paging_with_absurd_numbers_is_a_400_not_a_500(owner_api, catalog, query):
    owner_api.raise_request_exception = False
    for endpoint in ("contacts", "items", "interactions"):
        response = owner_api.get(f"{API}/{endpoint}/?{query}")
        assert response.status_code == 400, (endpoint, response.content[:200])
        assert response.json()["error"]["fields"] == {"page_size": ["must be a whole number from 1 to 1000"]}
    assert len(owner_api.get(f"{API}/contacts/?page_size=1000").json()["results"]) <= 1000


@pytest.mark.parametrize("endpoint, body", [("contacts", {"email": "d@example.com"}), ("items", {"title": "Dot"})])
def test_an_external_id_with_a_dot_is_reachable(owner_api, db, endpoint, body):
    """Found by schemathesis (`/contacts/.exe/` was a 404 from the router): an id a CRM may create, like
    `john.doe`, must be readable, changeable and deletable by its URL too."""
    created = owner_api.post(f"{API}/{endpoint}/", {"external_id": "john.doe", **body}, format="json")
    assert created.status_code == 201, created.content
    assert owner_api.get(f"{API}/{endpoint}/john.doe/").status_code == 200
    assert owner_api.patch(f"{API}/{endpoint}/john.doe/", {}, format="json").status_code == 200
    assert owner_api.get(f"{API}/{endpoint}/john.doe.json").json()["external_id"] == "john.doe"
    assert owner_api.delete(f"{API}/{endpoint}/john.doe/").status_code == 204
