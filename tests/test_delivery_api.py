"""/api/v1/delivery-reports/: other providers report through the same path as SES's webhooks — one report or up
to 1,000 (207, bad rows by index, the good kept), idempotent by event id, the email found by either message id
within the caller's tenant; read and filtered by kind; never changed or removed; reviewers read only; hostile
input is a precise 400, never a 500."""

import pytest
from django.db import connection

from campaigns.models import DeliveryReport, EmailEvent, EventKind, ReportKind
from datasets.models import Suppression
from tenants.models import Role
from tests.conftest import api_client
from tests.test_complaint_guard import sent_emails

URL = "/api/v1/delivery-reports/"


def reports(tenant):
    return DeliveryReport.objects.for_tenant(tenant)


def test_one_hard_bounce_is_recorded_against_its_email_and_suppresses(owner_api, tenant):
    (email,) = sent_emails(tenant, 1)
    body = {"address": "Reader0@Example.com", "kind": "hard_bounce", "provider": "sendgrid", "event_id": "sg-1",
            "message_id": "m0@acme.example", "at": "2026-01-02T03:04:05Z", "detail": "550 5.1.1 no such user"}  # fmt: skip
    reply = owner_api.post(URL, body, format="json")
    assert reply.status_code == 201, reply.content
    row = reply.json()
    assert (row["address"], row["kind"], row["provider"], row["email"]) == (
        "reader0@example.com", "hard_bounce", "sendgrid", email.pk)  # fmt: skip
    assert row["at"].startswith("2026-01-02T03:04:05")
    listed = Suppression.objects.for_tenant(tenant).get()
    assert (listed.reason, listed.source, listed.note) == ("hard_bounce", "sendgrid", "550 5.1.1 no such user")
    assert EmailEvent.objects.for_tenant(tenant).filter(email=email, kind=EventKind.BOUNCED).count() == 1
    again = owner_api.post(URL, body, format="json")  # the same event again: one row, nothing new
    assert again.status_code == 200 and again.json()["id"] == row["id"]
    assert reports(tenant).count() == 1
    assert EmailEvent.objects.for_tenant(tenant).filter(email=email, kind=EventKind.BOUNCED).count() == 1


def test_the_provider_message_id_finds_the_email_too(owner_api, tenant):
    (email,) = sent_emails(tenant, 1)
    reply = owner_api.post(URL, {"address": "reader0@example.com", "kind": "delivered", "provider": "x",
                                 "message_id": email.provider_message_id}, format="json")  # fmt: skip
    assert reply.status_code == 201 and reply.json()["email"] == email.pk


def test_another_tenants_message_id_names_no_email_here(owner_api, tenant, other_tenant):
    (theirs,) = sent_emails(other_tenant, 1)
    reply = owner_api.post(URL, {"address": "reader0@example.com", "kind": "complaint", "provider": "x",
                                 "message_id": theirs.message_id}, format="json")  # fmt: skip
    assert reply.status_code == 201 and reply.json()["email"] is None
    assert not EmailEvent.dangerously_unscoped.filter(email=theirs).exists()
    assert not DeliveryReport.dangerously_unscoped.filter(tenant=other_tenant).exists()
    assert not Suppression.dangerously_unscoped.filter(tenant=other_tenant).exists()
    assert Suppression.objects.for_tenant(tenant).get().reason == "complaint"


def test_a_list_keeps_the_good_rows_and_names_the_bad_by_index(owner_api, tenant):
    rows = [
        {"address": "a@example.com", "kind": "soft_bounce", "provider": "mailgun", "event_id": "e1"},
        {"address": "not an address", "kind": "soft_bounce", "provider": "mailgun"},
        {"address": "b@example.com", "kind": "bounced", "provider": "mailgun"},
        "c@example.com",
        {"address": "d@example.com", "kind": "complaint", "provider": "mailgun", "event_id": "e4"},
        {"address": "a@example.com", "kind": "soft_bounce", "provider": "mailgun", "event_id": "e1"},
        {"address": "e@example.com", "kind": "delivered"},
    ]
    reply = owner_api.post(URL, rows, format="json")
    assert reply.status_code == 207, reply.content
    body = reply.json()
    assert len(body["recorded"]) == 2 and len(body["already"]) == 1 and body["already"][0] == body["recorded"][0]
    errors = {error["row"]: error["error"] for error in body["errors"]}
    assert sorted(errors) == [1, 2, 3, 6]
    assert "not an email address" in errors[1] and "kind" in errors[2] and "object" in errors[3]
    assert "provider" in errors[6]
    assert sorted(reports(tenant).values_list("address", flat=True)) == ["a@example.com", "d@example.com"]


def test_a_report_the_database_refuses_is_answered_by_row_while_the_others_are_recorded(owner_api, tenant):
    """What the serializer lets through but PostgreSQL refuses (a CHECK added for this test, rolled back with it)
    loses that report alone, by its index; one such report alone is a 400, not a 500."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {DeliveryReport._meta.db_table} ADD CONSTRAINT refuse_me CHECK (event_id <> 'no')")
    rows = [
        {"address": f"d{i}@example.com", "kind": "delivered", "provider": "x", "event_id": f"e{i}"} for i in range(4)
    ]
    rows[1]["event_id"] = "no"
    reply = owner_api.post(URL, rows, format="json")
    assert reply.status_code == 207, reply.content
    body = reply.json()
    (error,) = body["errors"]
    assert error["row"] == 1 and "the database refused this row" in error["error"] and "refuse_me" in error["error"]
    assert sorted(reports(tenant).values_list("event_id", flat=True)) == ["e0", "e2", "e3"]
    assert body["recorded"] == list(reports(tenant).order_by("event_id").values_list("pk", flat=True))
    again = owner_api.post(URL, [rows[0], rows[1]], format="json").json()
    assert again["already"] == body["recorded"][:1] and [e["row"] for e in again["errors"]] == [1]
    one = owner_api.post(URL, rows[1], format="json")
    assert one.status_code == 400 and "refuse_me" in one.json()["error"]["fields"]["non_field_errors"][0]


def test_soft_bounces_reported_here_count_to_the_limit(owner_api, tenant, settings):
    settings.SOFT_BOUNCE_LIMIT = 2
    row = {"address": "a@example.com", "kind": "soft_bounce", "provider": "postmark", "detail": {"diagnostic": "4.2.2"}}
    assert owner_api.post(URL, [row], format="json").status_code == 207
    assert not Suppression.objects.for_tenant(tenant).exists()
    assert owner_api.post(URL, row, format="json").status_code == 201
    listed = Suppression.objects.for_tenant(tenant).get()
    assert listed.reason == "hard_bounce" and listed.note.startswith("2 soft bounces and no delivery")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"address": "a@example.com", "kind": "complaint", "provider": ""}, "provider"),
        ({"address": "a@example.com", "kind": "complaint", "provider": "p" * 41}, "provider"),
        ({"address": "a@example.com", "kind": "complaint", "provider": "x", "event_id": "e" * 201}, "event_id"),
        ({"address": "a@example.com", "kind": "complaint", "provider": "x", "message_id": ["a"]}, "message_id"),
        ({"address": ["a@example.com"], "kind": "complaint", "provider": "x"}, "address"),
        ({"address": "a\x00@example.com", "kind": "complaint", "provider": "x"}, "address"),
        ({"address": "a" * 300 + "@example.com", "kind": "complaint", "provider": "x"}, "address"),
        ({"address": "a@example.com", "kind": {"x": 1}, "provider": "x"}, "kind"),
        ({"address": "a@example.com", "kind": "complaint", "provider": "x", "at": "yesterday"}, "at"),
        ({"address": "a@example.com", "kind": "complaint", "provider": "x", "at": "2999-01-01T00:00:00Z"}, "at"),
        ({"address": "a@example.com", "kind": "complaint", "provider": "x", "detail": 12}, "detail"),
        ({"address": "a@example.com", "kind": "complaint", "provider": "x", "detail": {"a": "\x00"}}, "detail"),
        ({"address": "a@example.com", "kind": "complaint", "provider": "x", "detail": "d" * 5000}, "detail"),
    ],
)
def test_hostile_fields_are_a_precise_400(owner_api, tenant, body, field):
    reply = owner_api.post(URL, body, format="json")
    assert reply.status_code == 400 and field in reply.json()["error"]["fields"], reply.content
    assert not reports(tenant).exists() and not Suppression.objects.for_tenant(tenant).exists()


@pytest.mark.parametrize("body", [b"12", b'"text"', b"null", b"[" * 5000, b"{not json"])
def test_hostile_bodies_are_a_400(owner_api, tenant, body):
    reply = owner_api.generic("POST", URL, body, content_type="application/json")
    assert reply.status_code == 400 and reply.json()


def test_more_than_a_thousand_rows_are_refused_whole(owner_api, tenant):
    rows = [{"address": f"a{i}@example.com", "kind": "delivered", "provider": "x"} for i in range(1001)]
    reply = owner_api.post(URL, rows, format="json")
    assert reply.status_code == 400 and "at most 1000" in reply.json()["error"]["message"]
    assert not reports(tenant).exists()


def test_lists_filter_by_kind_and_reports_are_never_changed(owner_api, reviewer_api, tenant):
    rows = [{"address": "a@example.com", "kind": k, "provider": "x"} for k in ("delivered", "complaint")]
    owner_api.post(URL, rows, format="json")
    assert [r["kind"] for r in reviewer_api.get(URL, {"kind": "complaint"}).json()["results"]] == ["complaint"]
    assert len(reviewer_api.get(URL).json()["results"]) == 2
    unknown = reviewer_api.get(URL, {"kind": "x" * 5000})  # an unknown kind is a 400 naming the parameter
    assert unknown.status_code == 400 and "kind" in unknown.json()["error"]["fields"]
    row = reports(tenant).first()
    assert reviewer_api.get(f"{URL}{row.pk}/").json()["id"] == row.pk
    for client, refused in ((owner_api, 405), (reviewer_api, 403)):  # a reviewer is refused any write first
        assert client.patch(f"{URL}{row.pk}/", {"kind": "delivered"}, format="json").status_code == refused
        assert client.put(f"{URL}{row.pk}/", {"kind": "delivered"}, format="json").status_code == refused
        assert client.delete(f"{URL}{row.pk}/").status_code == refused
    assert reviewer_api.post(URL, rows[0], format="json").status_code == 403
    marketer = api_client(tenant, Role.MARKETER)
    assert marketer.post(URL, rows[0], format="json").status_code == 201
    assert reports(tenant).count() == 3


def test_another_tenants_reports_are_invisible(owner_api, outsider_api, tenant, other_tenant):
    outsider_api.post(URL, {"address": "secret@theirs.example", "kind": "complaint", "provider": "x"}, format="json")
    theirs = DeliveryReport.dangerously_unscoped.get(tenant=other_tenant)
    assert owner_api.get(URL).json()["results"] == []
    assert owner_api.get(f"{URL}{theirs.pk}/").status_code == 404
    assert ReportKind.COMPLAINT == theirs.kind


@pytest.mark.django_db(transaction=True)
def test_soft_bounces_of_one_address_are_counted_one_at_a_time(tenant, settings):
    """Another report of the address still in its transaction holds the count back until it commits, so two
    soft bounces at once cannot each miss the other (PostgreSQL's advisory lock on the tenant's address)."""
    import threading
    import time

    from django.db import connection, transaction

    from campaigns.reports import _lock_address, report_record

    settings.SOFT_BOUNCE_LIMIT = 2
    held, release, done = threading.Event(), threading.Event(), []

    def other_report():
        with transaction.atomic():
            report_record(tenant_id=tenant.pk, provider="x", kind="soft_bounce", address="a@example.com")
            _lock_address(tenant.pk, "a@example.com")
            held.set()
            release.wait(10)
        connection.close()

    def this_report():
        report_record(tenant_id=tenant.pk, provider="x", kind="soft_bounce", address="a@example.com")
        done.append(time.monotonic())
        connection.close()

    first = threading.Thread(target=other_report)
    first.start()
    assert held.wait(10)
    second = threading.Thread(target=this_report)
    second.start()
    time.sleep(0.5)
    assert done == []  # waiting for the other report's transaction
    released = time.monotonic()
    release.set()
    first.join(10)
    second.join(10)
    assert done and done[0] >= released
    assert Suppression.objects.for_tenant(tenant).get().reason == "hard_bounce"  # it saw the other one
