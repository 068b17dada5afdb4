"""The API's newer endpoints through HTTP: API keys (owners only, shown once, revoked at once, read-only scope),
a campaign's preview and cancel, the run-shaping fields a live run holds, an email's test send and send, the usage
sums and the audit log, each seen only by its own tenant."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from campaigns import schedules, tasks
from campaigns.models import Campaign, CampaignRun, EmailEvent, EmailStatus, GeneratedEmail, RunStatus
from datasets.models import Contact
from routing.models import LLMCall
from saas.celery import app as celery_app
from tenants.models import ApiKey, KeyScope, Role
from tests.conftest import api_client

API = "/api/v1"


def keyed(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


# --- API keys -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MARKETER, Role.REVIEWER])
def test_only_owners_manage_keys(tenant, role):
    client = api_client(tenant, role)
    key = ApiKey.objects.filter(tenant=tenant).first()
    assert client.get(f"{API}/api-keys/").status_code == 403
    assert client.get(f"{API}/api-keys/{key.pk}/").status_code == 403
    assert client.post(f"{API}/api-keys/", {"name": "mine", "role": Role.REVIEWER}, format="json").status_code == 403
    assert client.post(f"{API}/api-keys/{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.filter(tenant=tenant).count() == 1 and key.revoked_at is None


@pytest.mark.parametrize("role", [Role.OWNER, Role.MARKETER, Role.REVIEWER])
def test_an_owner_creates_keys_of_every_role_shown_once(owner_api, role):
    answer = owner_api.post(f"{API}/api-keys/", {"name": f"{role} sync", "role": role}, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["role"] == role and body["scope"] == KeyScope.READ_WRITE and body["revoked"] is False
    plain = body["key"]
    assert plain.startswith(body["prefix"]) and len(plain) > len(body["prefix"]) + 10
    detail = owner_api.get(f"{API}/api-keys/{body['id']}/").json()
    listing = owner_api.get(f"{API}/api-keys/").json()["results"]
    assert "key" not in detail and all("key" not in row for row in listing)
    assert plain not in str(detail) + str(listing)
    assert keyed(plain).get(f"{API}/contacts/").status_code == 200  # the key works


def test_a_role_that_is_not_one_is_refused_on_role(owner_api, tenant):
    answer = owner_api.post(f"{API}/api-keys/", {"name": "x", "role": "emperor"}, format="json")
    assert answer.status_code == 400 and "role" in answer.json()["error"]["fields"]
    assert ApiKey.objects.filter(tenant=tenant).count() == 1


def test_keys_are_found_by_prefix_and_only_the_tenants_own(owner_api, tenant, other_tenant):
    mine, plain = ApiKey.objects.issue(tenant=tenant, name="CRM")
    ApiKey.objects.issue(tenant=tenant, name="other")
    theirs, their_plain = ApiKey.objects.issue(tenant=other_tenant, name="theirs")
    for ref in (f"ms_{mine.prefix}_", mine.prefix, plain):
        rows = owner_api.get(f"{API}/api-keys/", {"prefix": ref}).json()["results"]
        assert [row["id"] for row in rows] == [mine.pk], ref
    assert owner_api.get(f"{API}/api-keys/", {"prefix": theirs.prefix}).json()["results"] == []
    assert owner_api.get(f"{API}/api-keys/{theirs.pk}/").status_code == 404
    assert owner_api.post(f"{API}/api-keys/{theirs.pk}/revoke/").status_code == 404
    assert keyed(their_plain).get(f"{API}/contacts/").status_code == 200
    assert len(owner_api.get(f"{API}/api-keys/").json()["results"]) == 3  # the owner's own, CRM, other


def test_a_revoked_key_is_refused_from_its_next_request(owner_api, tenant):
    answer = owner_api.post(f"{API}/api-keys/", {"name": "doomed", "role": Role.MARKETER}, format="json").json()
    doomed = keyed(answer["key"])
    assert doomed.get(f"{API}/contacts/").status_code == 200
    revoked = owner_api.post(f"{API}/api-keys/{answer['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True and revoked.json()["revoked_at"]
    assert doomed.get(f"{API}/contacts/").status_code == 401
    rows = owner_api.get(f"{API}/api-keys/", {"revoked": "true"}).json()["results"]
    assert [row["id"] for row in rows] == [answer["id"]]


def test_revoke_is_idempotent_and_records_who_and_when(owner_api, tenant, django_assert_num_queries):
    key, _ = ApiKey.objects.issue(tenant=tenant, name="doomed")
    before = datetime.now(UTC)
    with django_assert_num_queries(1):  # one UPDATE; the copy in memory is set, not read back
        assert key.revoke(actor="admin:olga") is True
    assert before <= key.revoked_at <= datetime.now(UTC) and key.revoked_by == "admin:olga"
    first = ApiKey.objects.get(pk=key.pk)
    assert (first.revoked_at, first.revoked_by) == (key.revoked_at, "admin:olga")
    stale = ApiKey.objects.get(pk=key.pk)
    stale.revoked_at = stale.revoked_by = None  # a copy read before the revocation
    assert stale.revoke(actor="someone-else") is False
    assert (stale.revoked_at, stale.revoked_by) == (first.revoked_at, "admin:olga")  # the first revocation stays
    again = owner_api.post(f"{API}/api-keys/{key.pk}/revoke/")
    assert again.status_code == 200 and again.json()["revoked_by"] == "admin:olga"
    assert datetime.fromisoformat(again.json()["revoked_at"]) == first.revoked_at
    fresh, _ = ApiKey.objects.issue(tenant=tenant, name="by the api")
    answer = owner_api.post(f"{API}/api-keys/{fresh.pk}/revoke/").json()
    assert answer["revoked"] is True and answer["revoked_by"].startswith("api-key:")
    fresh.refresh_from_db()
    assert fresh.revoked_by == answer["revoked_by"] and fresh.revoked_at is not None


def test_revoking_the_key_one_uses_refuses_the_next_request(tenant):
    own, plain = ApiKey.objects.issue(tenant=tenant, name="self", role=Role.OWNER)
    client = keyed(plain)
    assert client.post(f"{API}/api-keys/{own.pk}/revoke/").status_code == 200
    assert client.get(f"{API}/api-keys/").status_code == 401
    assert client.get(f"{API}/contacts/").status_code == 401


def test_a_read_only_key_reads_but_never_writes(tenant, catalog):
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="read only")
    _, plain = ApiKey.objects.issue(tenant=tenant, name="reader", role=Role.OWNER, scope=KeyScope.READ_ONLY)
    reader = keyed(plain)
    assert reader.get(f"{API}/contacts/").status_code == 200
    assert reader.get(f"{API}/campaigns/{campaign.pk}/").status_code == 200
    new_contact = {"external_id": "new1", "email": "new1@example.com"}
    refused = reader.post(f"{API}/contacts/", new_contact, format="json")
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]["message"]
    assert reader.post(f"{API}/campaigns/{campaign.pk}/launch/", {}, format="json").status_code == 403
    assert reader.post(f"{API}/api-keys/", {"name": "escalate"}, format="json").status_code == 403
    assert not Contact.dangerously_unscoped.filter(external_id="new1").exists()
    assert not CampaignRun.dangerously_unscoped.exists()


# --- Campaign preview -----------------------------------------------------------------------------------------


@pytest.fixture
def campaign(tenant):
    return Campaign.dangerously_unscoped.create(tenant=tenant, name="Weekend picks", n_items=2, goal="weekend binge")


def test_a_preview_for_ones_own_contact_writes_a_sample_and_no_run(bedrock_settings, owner_api, campaign, catalog):
    contacts, _ = catalog
    contact = contacts[0]
    answer = owner_api.post(f"{API}/campaigns/{campaign.pk}/preview/", {"contact": contact.external_id}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["contact"] == contact.external_id and len(body["picks"]) == 2
    assert contact.first_name in body["prompt"] and all(p["title"] in body["prompt"] for p in body["picks"])
    assert body["ok"] is True, body["problem"]
    assert body["subject"] and body["attempts"] >= 1
    assert bedrock_settings and not CampaignRun.dangerously_unscoped.exists()
    assert not GeneratedEmail.dangerously_unscoped.exists()
    assert LLMCall.dangerously_unscoped.filter(tenant=campaign.tenant).count() == body["attempts"]


def test_a_preview_by_numeric_id_works_too(bedrock_settings, owner_api, campaign, catalog, emulator):
    contacts, _ = catalog
    answer = owner_api.post(f"{API}/campaigns/{campaign.pk}/preview/", {"contact": str(contacts[1].pk), "sample": False},
                            format="json")  # fmt: skip
    assert answer.status_code == 200 and answer.json()["contact"] == contacts[1].external_id


def test_another_tenants_contact_is_a_400_on_contact(bedrock_settings, owner_api, campaign, catalog, other_catalog):
    their_contacts, _ = other_catalog
    for ref in (their_contacts[0].external_id, str(their_contacts[0].pk), "nobody"):
        answer = owner_api.post(f"{API}/campaigns/{campaign.pk}/preview/", {"contact": ref}, format="json")
        assert answer.status_code == 400, ref
        assert "contact" in answer.json()["error"]["fields"]
    assert not LLMCall.dangerously_unscoped.exists()


def test_a_preview_without_a_sample_makes_no_model_call(bedrock_settings, emulator, owner_api, campaign, catalog):
    contacts, _ = catalog
    emulator.requests.clear()
    answer = owner_api.post(f"{API}/campaigns/{campaign.pk}/preview/",
                            {"contact": contacts[0].external_id, "sample": False}, format="json")  # fmt: skip
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["picks"] and body["prompt"] and body["ok"] is False and body["subject"] == ""
    assert not emulator.requests.filter(operation="Converse")
    assert not LLMCall.dangerously_unscoped.exists()


def test_another_tenants_campaign_is_not_previewed(owner_api, catalog, other_tenant):
    theirs = Campaign.dangerously_unscoped.create(tenant=other_tenant, name="theirs")
    contacts, _ = catalog
    answer = owner_api.post(f"{API}/campaigns/{theirs.pk}/preview/", {"contact": contacts[0].external_id},
                            format="json")  # fmt: skip
    assert answer.status_code == 404


# --- Campaign cancel, and what a live run holds ---------------------------------------------------------------


def test_cancel_stops_the_active_run_and_pauses_the_schedule(owner_api, tenant, campaign):
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.RUNNING, total=3)
    schedules.campaign_schedule(campaign=campaign, every=2, period="hours")
    answer = owner_api.post(f"{API}/campaigns/{campaign.pk}/cancel/")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"campaign": campaign.pk, "runs_cancelled": [run.pk], "schedule_paused": True}
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert schedules.campaign_schedule_get(campaign=campaign).enabled is False
    again = owner_api.post(f"{API}/campaigns/{campaign.pk}/cancel/")
    assert again.status_code == 409 and "nothing to cancel" in again.json()["error"]["message"]


def test_cancel_with_nothing_in_motion_is_a_409(owner_api, tenant, campaign):
    CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.COMPLETED)
    answer = owner_api.post(f"{API}/campaigns/{campaign.pk}/cancel/")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "conflict"


def test_a_reviewer_may_not_cancel_a_campaign(reviewer_api, tenant, campaign):
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.RUNNING)
    assert reviewer_api.post(f"{API}/campaigns/{campaign.pk}/cancel/").status_code == 403
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_a_live_run_holds_what_shapes_its_emails_but_not_the_name(owner_api, tenant, campaign):
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.QUEUED)
    url = f"{API}/campaigns/{campaign.pk}/"
    refused = owner_api.patch(url, {"n_items": 5, "name": "Renamed"}, format="json")
    assert refused.status_code == 409, refused.content
    assert "n_items" in refused.json()["error"]["message"] and refused.json()["error"]["details"]["run"] == run.pk
    campaign.refresh_from_db()
    assert (campaign.n_items, campaign.name) == (2, "Weekend picks")  # nothing of a refused change is kept
    assert owner_api.patch(url, {"n_items": 2}, format="json").status_code == 200  # unchanged value: no change
    renamed = owner_api.patch(url, {"name": "Renamed"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed"
    run.status = RunStatus.COMPLETED
    run.save()
    assert owner_api.patch(url, {"n_items": 5}, format="json").json()["n_items"] == 5


# --- Email test send and send ---------------------------------------------------------------------------------


def one_email(tenant, status=EmailStatus.APPROVED) -> GeneratedEmail:
    contact = Contact.dangerously_unscoped.create(tenant=tenant, external_id="s1", email="pat@example.com",
                                                  first_name="Pat")  # fmt: skip
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name=f"send {status}")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.COMPLETED)
    return GeneratedEmail.dangerously_unscoped.create(tenant=tenant, run=run, contact=contact, status=status,
                                                      subject="Picks for Pat", body="Hello there, Pat.")  # fmt: skip


def test_a_test_send_arrives_and_changes_nothing(owner_api, tenant, smtp_server):
    email = one_email(tenant, EmailStatus.DRAFT)
    answer = owner_api.post(f"{API}/emails/{email.pk}/test_send/", {"to": "me@acme.example"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["sent_to"] == "me@acme.example" and answer.json()["email"]["status"] == EmailStatus.DRAFT
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["me@acme.example"] and not smtp_server.to("pat@example.com")
    assert received.message["Subject"] == "[Test] Picks for Pat"
    email.refresh_from_db()
    assert email.status == EmailStatus.DRAFT and email.sent_at is None and not email.message_id
    (event,) = EmailEvent.dangerously_unscoped.filter(email=email)
    assert (
        event.kind == "test_sent" and event.detail == {"to": "me@acme.example"} and event.actor.startswith("api-key:")
    )


@pytest.mark.parametrize("to", ["not an address", "a@b@c", "", "me@acme.example\nBcc: x@y.example"])
def test_a_test_send_to_a_bad_address_is_a_400(owner_api, tenant, smtp_server, to):
    email = one_email(tenant, EmailStatus.DRAFT)
    answer = owner_api.post(f"{API}/emails/{email.pk}/test_send/", {"to": to}, format="json")
    assert answer.status_code == 400, answer.content
    assert "to" in answer.json()["error"]["fields"]
    assert not smtp_server.received and not EmailEvent.dangerously_unscoped.exists()


@pytest.fixture
def in_process_celery():
    """Tasks run in the request, as without a broker (as tests/test_sending.py does)."""
    before, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, True
    yield
    celery_app.conf.task_always_eager = before


def test_an_approved_email_is_sent_once(transactional_db, tenant, smtp_server, in_process_celery):
    email = one_email(tenant)
    client = api_client(tenant)
    answer = client.post(f"{API}/emails/{email.pk}/send/")  # no transaction open: the task runs at once
    assert answer.status_code == 202, answer.content
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT and email.message_id
    again = client.post(f"{API}/emails/{email.pk}/send/")
    assert again.status_code == 409
    assert tasks.email_send.apply((email.pk, tenant.pk)).get() == EmailStatus.SENT
    assert len(smtp_server.to("pat@example.com")) == 1 and len(smtp_server.received) == 1


@pytest.mark.parametrize("status", [EmailStatus.DRAFT, EmailStatus.REJECTED])
def test_an_email_not_approved_is_not_sent(owner_api, tenant, smtp_server, status):
    email = one_email(tenant, status)
    answer = owner_api.post(f"{API}/emails/{email.pk}/send/")
    assert answer.status_code == 409 and f"is {status}" in answer.json()["error"]["message"]
    email.refresh_from_db()
    assert email.status == status and not smtp_server.received


# --- Usage ----------------------------------------------------------------------------------------------------

DAY1 = datetime(2026, 11, 2, 10, tzinfo=UTC)
DAY2 = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)


def call(tenant, *, model="bedrock/nova-lite", at=DAY1, campaign=None, tokens=(100, 20), cost="0.001", ok=True):
    return LLMCall.dangerously_unscoped.create(
        tenant=tenant, task="marketing_email", model_key=model, provider="bedrock", model_id=model,
        route_reason="test", input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=Decimal(cost), ok=ok,
        campaign_id=campaign, created_at=at, latency_ms=100,
    )  # fmt: skip


@pytest.fixture
def calls(tenant, other_tenant, campaign):
    call(tenant, campaign=campaign.pk)
    call(tenant, campaign=campaign.pk, at=DAY2, tokens=(300, 40), cost="0.003")
    call(tenant, model="bedrock/claude-haiku", at=DAY2, tokens=(50, 5), cost="0.01", ok=False)
    call(other_tenant, campaign=campaign.pk, tokens=(10_000, 10_000), cost="9")
    return campaign


def rows_of(client, **params) -> dict:
    answer = client.get(f"{API}/usage/", params)
    assert answer.status_code == 200, answer.content
    return answer.json()


def test_usage_by_model_sums_the_tenants_calls_only(owner_api, calls):
    body = rows_of(owner_api, group_by="model")
    by_key = {row["key"]: row for row in body["results"]}
    assert set(by_key) == {"bedrock/nova-lite", "bedrock/claude-haiku"}
    nova = by_key["bedrock/nova-lite"]
    assert (nova["calls"], nova["failed"], nova["input_tokens"], nova["output_tokens"]) == (2, 0, 400, 60)
    assert Decimal(nova["cost_usd"]) == Decimal("0.004")
    assert (by_key["bedrock/claude-haiku"]["calls"], by_key["bedrock/claude-haiku"]["failed"]) == (1, 1)
    assert body["results"][0]["key"] == "bedrock/claude-haiku"  # most costly first
    total = body["total"]
    assert (total["calls"], total["failed"], total["input_tokens"], total["output_tokens"]) == (3, 1, 450, 65)
    assert Decimal(total["cost_usd"]) == Decimal("0.014")


def test_usage_by_day_and_by_campaign(owner_api, calls):
    days = rows_of(owner_api, group_by="day")["results"]
    assert [(row["key"], row["calls"], row["input_tokens"]) for row in days] == [
        ("2026-11-02", 1, 100), ("2026-11-03", 2, 350)
    ]  # fmt: skip
    campaigns = {row["key"]: row for row in rows_of(owner_api, group_by="campaign")["results"]}
    assert set(campaigns) == {str(calls.pk), None}
    assert campaigns[str(calls.pk)]["campaign_name"] == "Weekend picks" and campaigns[str(calls.pk)]["calls"] == 2
    assert campaigns[None]["calls"] == 1 and campaigns[None]["campaign"] is None


def test_usage_since_and_until_bound_the_calls(owner_api, calls):
    since = rows_of(owner_api, group_by="model", since="2026-11-03T00:00:00Z")["total"]
    assert (since["calls"], since["input_tokens"]) == (2, 350)
    until = rows_of(owner_api, group_by="model", until="2026-11-03T00:00:00Z")["total"]
    assert (until["calls"], until["input_tokens"]) == (1, 100)
    one = rows_of(owner_api, group_by="day", since=DAY2.isoformat(), until=(DAY2 + timedelta(seconds=1)).isoformat())
    assert one["total"]["calls"] == 2  # since included
    assert rows_of(owner_api, group_by="model", campaign=calls.pk)["total"]["calls"] == 2
    backwards = owner_api.get(f"{API}/usage/", {"since": "2026-11-03T00:00:00Z", "until": "2026-11-02T00:00:00Z"})
    assert backwards.status_code == 400 and "until" in backwards.json()["error"]["fields"]
    assert owner_api.get(f"{API}/usage/", {"group_by": "planet"}).status_code == 400


def test_another_tenant_sees_only_its_own_usage(outsider_api, calls):
    body = rows_of(outsider_api, group_by="model")
    assert body["total"]["calls"] == 1 and body["total"]["input_tokens"] == 10_000
    campaigns = rows_of(outsider_api, group_by="campaign")["results"]
    assert [row["campaign_name"] for row in campaigns] == [None]  # the id is not its campaign: no name leaks


# --- Audit log ------------------------------------------------------------------------------------------------


@pytest.fixture
def events(tenant, other_tenant):
    mine = one_email(tenant, EmailStatus.DRAFT)
    someone = Contact.dangerously_unscoped.create(tenant=tenant, external_id="s2", email="sam@example.com")
    other = GeneratedEmail.dangerously_unscoped.create(tenant=tenant, run=mine.run, contact=someone,
                                                       subject="Other", body="Other body")  # fmt: skip
    EmailEvent.record(mine, "approved", by="rita", status=EmailStatus.APPROVED)
    EmailEvent.record(mine, "sent", status=EmailStatus.SENT)
    EmailEvent.record(other, "rejected", by="rita", status=EmailStatus.REJECTED, detail={"reason": "tone"})
    EmailEvent.record(other, "test_sent", by="rita", detail={"to": "rita@acme.example"})
    their_email = one_email(other_tenant, EmailStatus.DRAFT)
    theirs = EmailEvent.record(their_email, "approved", by="Secret Sam", status=EmailStatus.APPROVED)
    return mine, other, theirs


def audit(client, **params) -> list[dict]:
    answer = client.get(f"{API}/audit-log/", params)
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def test_the_audit_log_filters_by_email_and_kind(owner_api, events):
    mine, other, _ = events
    assert [row["kind"] for row in audit(owner_api, email=mine.pk)] == ["sent", "approved"]  # newest first
    assert [row["kind"] for row in audit(owner_api, email=other.pk, kind="rejected")] == ["rejected"]
    rows = audit(owner_api, kind=["approved", "test_sent"])
    assert sorted(row["kind"] for row in rows) == ["approved", "test_sent"]
    (rejected,) = audit(owner_api, kind="rejected")
    assert (
        rejected["email"] == other.pk and rejected["run"] == other.run_id and rejected["detail"] == {"reason": "tone"}
    )
    assert rejected["campaign"] == other.run.campaign_id and rejected["actor"] == "rita"
    assert owner_api.get(f"{API}/audit-log/", {"kind": "teleported"}).status_code == 400


def test_another_tenants_events_are_invisible(owner_api, outsider_api, events):
    _, _, theirs = events
    assert theirs.pk not in [row["id"] for row in audit(owner_api)] and len(audit(owner_api)) == 4
    assert audit(owner_api, email=theirs.email_id) == []
    assert owner_api.get(f"{API}/audit-log/{theirs.pk}/").status_code == 404
    assert [row["actor"] for row in audit(outsider_api)] == ["Secret Sam"]


def test_the_audit_log_pages_by_cursor(owner_api, events):
    seen, url = [], f"{API}/audit-log/?page_size=3"
    while url:
        page = owner_api.get(url)
        assert page.status_code == 200, page.content
        seen += [row["id"] for row in page.json()["results"]]
        url = page.json()["next"]
    everything = list(EmailEvent.dangerously_unscoped.filter(tenant=events[0].tenant).order_by("-at", "-pk"))
    assert seen == [event.pk for event in everything] and len(seen) == 4
    assert owner_api.get(f"{API}/audit-log/", {"cursor": "bogus"}).status_code == 400
