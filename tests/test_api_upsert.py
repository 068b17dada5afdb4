"""Bulk upsert by external_id (PUT on the collection): good rows kept, bad ones by index, no re-subscribe."""

import time

from django.db import connection

from datasets.models import Contact, Interaction, Item, Suppression, SuppressionReason
from datasets.suppression import address_suppress, addresses_suppressed

API = "/api/v1"


def test_bulk_upsert_with_mixed_good_and_bad_rows(owner_api, tenant, catalog):
    Contact.objects.for_tenant(tenant).filter(external_id="u0").update(unsubscribed=True)
    rows = [
        {"external_id": "new1", "email": "new1@example.com"},
        {"external_id": "new2", "email": "not an address"},
        {"external_id": "u0", "first_name": "Back", "unsubscribed": False},
        {"external_id": "new3"},
        {"external_id": "new1", "email": "later@example.com"},
    ]
    reply = owner_api.put(f"{API}/contacts/", {"rows": rows}, format="json")
    assert reply.status_code == 207, reply.content
    body = reply.json()
    assert (body["created"], body["updated"], body["superseded"], body["failed"]) == (1, 1, 1, 2)
    assert [e["index"] for e in body["errors"]] == [1, 3]
    u0 = Contact.objects.for_tenant(tenant).get(external_id="u0")
    assert u0.first_name == "Back" and u0.unsubscribed
    assert Contact.objects.for_tenant(tenant).get(external_id="new1").email == "later@example.com"
    events = [{"contact": "u0", "item": "m1", "timestamp": "2025-06-01T10:00:00Z"}, {"contact": "x", "item": "m1",
              "timestamp": "2025-06-01T10:00:00Z"}]  # fmt: skip
    first = owner_api.put(f"{API}/interactions/", {"rows": events}, format="json").json()
    again = owner_api.put(f"{API}/interactions/", {"rows": events}, format="json").json()
    assert (first["created"], first["failed"], again["unchanged"]) == (1, 1, 1)
    assert Interaction.objects.for_tenant(tenant).filter(contact=u0, timestamp="2025-06-01T10:00:00Z").count() == 1


def put(client, what: str, rows):
    return client.put(f"{API}/{what}/", {"rows": rows}, format="json")


def test_five_thousand_contacts_land_in_one_request_and_again_are_unchanged(owner_api, tenant):
    rows = [{"external_id": f"c{i}", "email": f"c{i}@example.com", "first_name": f"First{i}", "age": 20 + i % 50}
            for i in range(5000)]  # fmt: skip
    started = time.monotonic()
    first = put(owner_api, "contacts", rows)
    assert first.status_code == 207, first.content[:500]
    assert {k: first.json()[k] for k in ("created", "updated", "unchanged", "superseded", "failed")} == {
        "created": 5000, "updated": 0, "unchanged": 0, "superseded": 0, "failed": 0}  # fmt: skip
    stored = Contact.objects.for_tenant(tenant)
    assert stored.count() == 5000 and stored.get(external_id="c4321").email == "c4321@example.com"
    again = put(owner_api, "contacts", rows).json()
    assert (again["created"], again["updated"], again["unchanged"], again["failed"]) == (0, 0, 5000, 0)
    assert time.monotonic() - started < 30, "two requests of 5,000 rows take seconds, not minutes"


def test_more_than_ten_thousand_rows_is_a_413(owner_api, tenant):
    reply = put(owner_api, "contacts", [{"external_id": f"x{i}"} for i in range(10_001)])
    assert reply.status_code == 413, reply.content[:500]
    error = reply.json()["error"]
    assert error["code"] == "request_too_large" and "at most 10,000 rows" in error["message"]
    assert not Contact.objects.for_tenant(tenant).exists()


def test_no_rows_is_a_400(owner_api, tenant):
    for body in ({"rows": []}, {}, {"rows": {"external_id": "x"}}, [{"external_id": "x"}]):
        reply = owner_api.put(f"{API}/contacts/", body, format="json")
        assert reply.status_code == 400, (body, reply.content)
        assert reply.json()["error"]["code"] == "validation_error" and "rows" in reply.json()["error"]["fields"]


def test_an_upsert_touches_only_its_own_tenant(owner_api, tenant, catalog, other_tenant, other_catalog):
    theirs = Contact.dangerously_unscoped.create(tenant=other_tenant, external_id="u0", email="g@example.com",
                                                 first_name="Theirs")  # fmt: skip
    body = put(owner_api, "contacts", [{"external_id": "u0", "first_name": "Ours"}]).json()
    assert (body["created"], body["updated"], body["failed"]) == (0, 1, 0)
    theirs.refresh_from_db()
    assert theirs.first_name == "Theirs" and theirs.email == "g@example.com"
    assert Contact.objects.for_tenant(tenant).get(external_id="u0").first_name == "Ours"


def test_an_interaction_naming_another_tenants_contact_or_item_fails_its_row(owner_api, tenant, catalog, other_catalog):
    events = [
        {"contact": "gu0", "item": "m1", "timestamp": "2025-06-01T10:00:00Z"},
        {"contact": "u1", "item": "gm1", "timestamp": "2025-06-01T10:00:00Z"},
        {"contact": "u1", "item": "m1", "timestamp": "2025-06-01T11:00:00Z"},
    ]
    reply = put(owner_api, "interactions", events)
    assert reply.status_code == 207
    body = reply.json()
    assert (body["created"], body["failed"]) == (1, 2)
    errors = {e["index"]: e["fields"] for e in body["errors"]}
    assert list(errors) == [0, 1]
    assert errors[0] == {"contact": ["no contact with external_id 'gu0' in your tenant"]}
    assert errors[1] == {"item": ["no item with external_id 'gm1' in your tenant"]}
    assert not Interaction.dangerously_unscoped.filter(timestamp="2025-06-01T10:00:00Z").exists()
    assert Interaction.objects.for_tenant(tenant).get(timestamp="2025-06-01T11:00:00Z").contact.external_id == "u1"


def test_a_new_email_replaces_the_old_one(owner_api, tenant, catalog):
    body = put(owner_api, "contacts", [{"external_id": "u2", "email": "moved@example.com"}]).json()
    assert (body["updated"], body["failed"]) == (1, 0)
    u2 = Contact.objects.for_tenant(tenant).get(external_id="u2")
    assert u2.email == "moved@example.com" and u2.first_name == "Name2"
    assert not Contact.objects.for_tenant(tenant).filter(email="user2@example.com").exists()


def test_a_suppressed_address_stays_suppressed_and_the_row_says_so(owner_api, tenant, catalog):
    address_suppress(tenant_id=tenant.pk, address="bounced@example.com", reason=SuppressionReason.HARD_BOUNCE,
                     source="ses", by="test")  # fmt: skip
    rows = [{"external_id": "u3", "email": "Bounced@Example.com"}, {"external_id": "fresh", "email": "ok@example.com"}]
    body = put(owner_api, "contacts", rows).json()
    assert (body["created"], body["updated"], body["failed"]) == (1, 1, 0)
    assert body["notices"] == [{"index": 0, "external_id": "u3",
                                "message": "Bounced@Example.com is on the suppression list: it is not emailed"}]  # fmt: skip
    assert Contact.objects.for_tenant(tenant).get(external_id="u3").email == "Bounced@Example.com"
    kept = Suppression.objects.for_tenant(tenant).get(address="bounced@example.com")
    assert kept.reason == SuppressionReason.HARD_BOUNCE
    assert addresses_suppressed(tenant_id=tenant.pk, addresses=["bounced@example.com", "ok@example.com"]) == {
        "bounced@example.com"}  # fmt: skip


def test_items_are_created_and_updated(owner_api, tenant, catalog):
    rows = [
        {"external_id": "m0", "title": "Renamed", "genres": ["Drama", "Comedy"]},
        {"external_id": "m1", "title": "Movie Number 1"},
        {"external_id": "new-item", "title": "Brand New", "year": 2024, "imdb_rating": 7.5},
        {"external_id": "no-title", "year": 2020},
    ]
    reply = put(owner_api, "items", rows)
    assert reply.status_code == 207
    body = reply.json()
    assert (body["created"], body["updated"], body["unchanged"], body["failed"]) == (1, 1, 1, 1)
    assert body["errors"] == [{"index": 3, "external_id": "no-title",
                               "fields": {"title": ["required to create a item"]}}]  # fmt: skip
    items = Item.objects.for_tenant(tenant)
    m0 = items.get(external_id="m0")
    assert (m0.title, m0.genres, m0.year) == ("Renamed", ["Drama", "Comedy"], 2000)
    new = items.get(external_id="new-item")
    assert (new.title, new.year, new.imdb_rating) == ("Brand New", 2024, 7.5)
    assert not items.filter(external_id="no-title").exists()


def test_a_row_with_bad_fields_is_answered_by_index_and_field_while_the_others_land(owner_api, tenant):
    rows = [
        {"external_id": "ok1", "email": "ok1@example.com"},
        {"external_id": "bad", "email": "bad@example.com", "age": "old", "attributes": "not an object"},
        "not a row",
        {"external_id": "ok2", "email": "ok2@example.com", "first_name": "Two"},
    ]
    reply = put(owner_api, "contacts", rows)
    assert reply.status_code == 207
    body = reply.json()
    assert (body["created"], body["failed"]) == (2, 2)
    bad, not_row = body["errors"]
    assert (bad["index"], bad["external_id"]) == (1, "bad") and set(bad["fields"]) == {"age", "attributes"}
    assert (not_row["index"], not_row["fields"]) == (2, {"non_field_errors": ["each row must be an object"]})
    stored = Contact.objects.for_tenant(tenant)
    assert set(stored.values_list("external_id", flat=True)) == {"ok1", "ok2"}


def test_an_unsubscribe_by_upsert_lists_the_address_and_a_later_false_does_not_lift_it(owner_api, tenant, catalog):
    body = put(owner_api, "contacts", [{"external_id": "u4", "unsubscribed": True}]).json()
    assert (body["updated"], body["unchanged"], body["failed"]) == (1, 0, 0)
    assert addresses_suppressed(tenant_id=tenant.pk, addresses=["user4@example.com"]) == {"user4@example.com"}
    again = put(owner_api, "contacts", [{"external_id": "u4", "first_name": "Still", "unsubscribed": False}]).json()
    assert (again["updated"], again["failed"]) == (1, 0)
    assert [n["index"] for n in again["notices"]] == [0] and "stays unsubscribed" in again["notices"][0]["message"]
    u4 = Contact.objects.for_tenant(tenant).get(external_id="u4")
    assert u4.unsubscribed and u4.first_name == "Still"
    assert Suppression.objects.for_tenant(tenant).filter(address="user4@example.com").exists()


def test_a_row_the_database_refuses_is_answered_by_index_while_its_chunk_lands(owner_api, tenant):
    """What the serializer lets through but PostgreSQL refuses (here a CHECK added for this test, rolled back with
    it) loses that row alone: its chunk is written again row by row."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {Contact._meta.db_table} ADD CONSTRAINT refuse_me CHECK (first_name <> 'Refuse')")
    rows = [{"external_id": f"d{i}", "email": f"d{i}@example.com", "first_name": f"D{i}"} for i in range(5)]
    rows[2]["first_name"] = "Refuse"
    reply = put(owner_api, "contacts", rows)
    assert reply.status_code == 207, reply.content
    body = reply.json()
    assert (body["created"], body["failed"]) == (4, 1)
    (error,) = body["errors"]
    assert error["index"] == 2 and error["external_id"] == "d2"
    assert error["fields"]["non_field_errors"][0].startswith("the database refused this row")
    assert "refuse_me" in error["fields"]["non_field_errors"][0]
    assert sorted(Contact.objects.for_tenant(tenant).values_list("external_id", flat=True)) == ["d0", "d1", "d3", "d4"]


def test_the_same_event_in_another_offset_is_the_same_event(owner_api, tenant, catalog):
    first = put(owner_api, "interactions", [{"contact": "u0", "item": "m2", "timestamp": "2025-06-01T10:00:00Z"}])
    rows = [
        {"contact": "u0", "item": "m2", "timestamp": "2025-06-01T12:00:00+02:00"},
        {"contact": "u0", "item": "m2", "timestamp": "2025-06-01T05:00:00-05:00"},
    ]
    again = put(owner_api, "interactions", rows).json()
    assert first.json()["created"] == 1
    assert (again["created"], again["unchanged"], again["superseded"]) == (0, 1, 1)
    assert Interaction.objects.for_tenant(tenant).filter(contact__external_id="u0", item__external_id="m2").count() == 1


def _state(model, tenant) -> dict:
    """Every stored field of the tenant's rows by external id, but the ids and the moments rows were written."""
    skip = {"id", "tenant", "created_at", "updated_at"}
    names = [f.name for f in model._meta.concrete_fields if f.name not in skip]
    return {row["external_id"]: row for row in model.objects.for_tenant(tenant).values(*names)}


UPSERT_CONTACTS = [
    {"external_id": "u0", "first_name": "Renamed", "attributes": {"plan": "gold", "nested": {"list": [1, 2.5, None]}}},
    {"external_id": "u1", "age": 41},
    {"external_id": "fresh1", "email": "fresh1@example.com"},
    {"external_id": "fresh2", "email": "Fresh2@Example.com", "first_name": "Zoë “Z” O'Brien", "last_name": "\\ ' \"",
     "age": 0, "gender": "f", "locale": "de_DE", "attributes": {"ß": "\u00e9\u2028", "n": -1.5e300, "t": True}},
]  # fmt: skip
UPSERT_ITEMS = [
    {"external_id": "m0", "title": "Heat (1995)", "genres": ["Crime", "Drama"], "imdb_rating": 8.3},
    {"external_id": "m-new", "title": "Only a title"},
    {"external_id": "m-full", "title": "Full", "year": 2024, "genres": [], "plot": "A plot\nwith lines",
     "imdb_votes": 12345, "maturity_rating": 13, "maturity_rating_string": "PG-13", "promotion": True,
     "metadata": {"k": [1, {"v": None}]}},
]  # fmt: skip


def test_the_json_statement_leaves_the_rows_bulk_create_would(owner_api, tenant, catalog, other_tenant, monkeypatch):
    """The same rows upserted into two tenants with the same starting data, one through the jsonb statement and
    one through Django's bulk_create, leave the same rows and get the same answer."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from .conftest import api_client, make_catalog

    make_catalog(other_tenant)  # the same rows as `catalog`, in the other tenant
    other_api = api_client(other_tenant)
    assert _state(Contact, tenant) == _state(Contact, other_tenant) and _state(Item, tenant) == _state(
        Item, other_tenant
    )
    before = Contact.objects.for_tenant(tenant).get(external_id="u0")
    with CaptureQueriesContext(connection) as fast_sql:
        fast = [put(owner_api, "contacts", UPSERT_CONTACTS).json(), put(owner_api, "items", UPSERT_ITEMS).json()]
    assert any("jsonb_to_recordset" in q["sql"] for q in fast_sql.captured_queries)
    monkeypatch.setattr("datasets.upsert._json_native", lambda model, fields: False)  # the bulk_create path
    with CaptureQueriesContext(connection) as slow_sql:
        slow = [put(other_api, "contacts", UPSERT_CONTACTS).json(), put(other_api, "items", UPSERT_ITEMS).json()]
    assert not any("jsonb_to_recordset" in q["sql"] for q in slow_sql.captured_queries)
    assert fast == slow and fast[0]["failed"] == fast[1]["failed"] == 0
    assert (fast[0]["created"], fast[0]["updated"], fast[1]["created"], fast[1]["updated"]) == (2, 2, 2, 1)
    for model in (Contact, Item):
        mine, theirs = _state(model, tenant), _state(model, other_tenant)
        assert mine.keys() == theirs.keys()
        for external_id, row in mine.items():
            assert row == theirs[external_id], (model.__name__, external_id)
    after = Contact.objects.for_tenant(tenant).get(external_id="u0")
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert (after.first_name, after.last_name, after.email) == ("Renamed", before.last_name, before.email)
    fresh = Contact.objects.for_tenant(tenant).get(external_id="fresh1")
    assert (fresh.attributes, fresh.unsubscribed, fresh.timezone, fresh.age) == ({}, False, "", None)
    assert fresh.created_at == fresh.updated_at
