"""Bulk upsert by external_id (PUT on the collection): good rows kept, bad ones by index, no re-subscribe."""

from datasets.models import Contact, Interaction

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
