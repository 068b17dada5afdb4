"""The suppression list: addresses a tenant must not email (unsubscribed, hard-bounced, complained, added by hand),
each with its reason, source and time. Checked when a run picks its audience and again at send time, against a
real SMTP server; another tenant's list is its own."""

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from campaigns import sending
from campaigns.audiences import audience_contacts
from campaigns.models import Campaign, EmailStatus, GeneratedEmail
from datasets.consent import contact_resubscribe, contact_unsubscribe, contacts_unsubscribe
from datasets.models import ConsentSource, Contact, Suppression, SuppressionReason
from datasets.suppression import address_suppress, addresses_suppressed
from tenants.models import Role
from tenants.services import membership_add
from tests.test_sending import approved_run, contact


def test_an_unsubscribe_puts_the_address_on_the_list_once(tenant):
    person = contact(tenant, 1, email="Pat.Doe@Example.com")
    assert contact_unsubscribe(contact=person, source=ConsentSource.UNSUBSCRIBE_LINK, by="link")
    contact_unsubscribe(contact=person, source=ConsentSource.ADMIN, by="admin:rita")  # already: nothing new
    (row,) = Suppression.objects.for_tenant(tenant).all()
    assert (row.address, row.reason, row.source, row.actor) == (
        "pat.doe@example.com", SuppressionReason.UNSUBSCRIBED, ConsentSource.UNSUBSCRIBE_LINK, "link"
    )  # fmt: skip


def test_unsubscribing_many_contacts_writes_the_list_in_a_few_statements(tenant, django_assert_max_num_queries):
    """An import that unsubscribes thousands must not write the list one INSERT (and savepoint) per contact."""
    people = [contact(tenant, n) for n in range(1, 41)]
    address_suppress(tenant_id=tenant.pk, address=people[0].email, reason=SuppressionReason.COMPLAINT,
                     source="ses", by="ses")  # fmt: skip
    with django_assert_max_num_queries(12):
        changed = contacts_unsubscribe(
            tenant_id=tenant.pk, contact_ids=[p.pk for p in people], source=ConsentSource.IMPORT, by="import",
            notes={people[1].pk: "row 2 said unsubscribed"},
        )  # fmt: skip
    assert len(changed) == 40
    rows = {row.address: row for row in Suppression.objects.for_tenant(tenant)}
    assert set(rows) == {p.email.lower() for p in people}
    assert rows[people[0].email.lower()].reason == SuppressionReason.COMPLAINT  # the stronger reason stays
    assert (rows[people[1].email.lower()].reason, rows[people[1].email.lower()].note) == (
        SuppressionReason.UNSUBSCRIBED, "row 2 said unsubscribed"
    )  # fmt: skip


def test_a_suppressed_address_is_never_sent_whatever_its_case(tenant, other_tenant, smtp_server):
    address_suppress(tenant_id=tenant.pk, address="bounced@example.com", reason=SuppressionReason.HARD_BOUNCE,
                     source="smtp", by="mail server", note="550 5.1.1 no such user")  # fmt: skip
    address_suppress(tenant_id=other_tenant.pk, address="fine@example.com", reason=SuppressionReason.COMPLAINT,
                     source="ses", by="ses")  # fmt: skip
    run = approved_run(
        tenant, [contact(tenant, 1, email="Bounced@Example.com"), contact(tenant, 2, email="fine@example.com")]
    )
    emails = {
        e.contact.email: e
        for e in GeneratedEmail.dangerously_unscoped.filter(run=run).select_related("contact", "tenant")
    }
    assert sending.email_send(email=emails["Bounced@Example.com"]) == EmailStatus.SUPPRESSED
    assert sending.email_send(email=emails["fine@example.com"]) == EmailStatus.SENT  # the other tenant's list
    assert [r.rcpt_tos for r in smtp_server.received] == [["fine@example.com"]]
    suppressed = GeneratedEmail.dangerously_unscoped.get(pk=emails["Bounced@Example.com"].pk)
    assert "suppression list" in suppressed.send_error and "hard bounce" in suppressed.send_error


def test_a_run_never_picks_a_suppressed_address(tenant):
    kept = [contact(tenant, n) for n in range(1, 4)]
    address_suppress(tenant_id=tenant.pk, address="PERSON2@example.com", reason=SuppressionReason.MANUAL,
                     source="admin", by="admin:rita")  # fmt: skip
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="all")
    assert list(audience_contacts(campaign)) == [kept[0], kept[2]]
    assert addresses_suppressed(tenant_id=tenant.pk, addresses=["person2@EXAMPLE.com", "person1@example.com"]) == {
        "person2@example.com"
    }


def test_a_resubscribe_lifts_the_unsubscribe_but_never_a_complaint(tenant):
    person, other = contact(tenant, 1), contact(tenant, 2)
    for who in (person, other):
        contact_unsubscribe(contact=who, source=ConsentSource.ADMIN, by="admin:rita")
    address_suppress(tenant_id=tenant.pk, address=other.email, reason=SuppressionReason.COMPLAINT, source="ses",
                     by="ses")  # fmt: skip
    contact_resubscribe(contact=person, source=ConsentSource.ADMIN, by="admin:rita", consent="double opt-in 2026-12-01")
    contact_resubscribe(contact=other, source=ConsentSource.ADMIN, by="admin:rita", consent="asked by phone")
    rows = dict(Suppression.objects.for_tenant(tenant).values_list("address", "reason"))
    assert rows == {other.email: SuppressionReason.COMPLAINT}  # a complaint outranks the unsubscribe it joined


def test_a_marketer_adds_an_address_by_hand_and_a_reviewer_cannot(tenant, other_tenant):
    membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123")
    membership_add(tenant=tenant, username="rev", role=Role.REVIEWER, password="pw-rev-12345")
    rita, rev = Client(), Client()
    rita.login(username="rita", password="pw-rita-123")
    rev.login(username="rev", password="pw-rev-12345")
    add = reverse("admin:datasets_suppression_add")
    form = {"tenant": tenant.pk, "address": "  Someone@Example.COM ", "reason": "manual", "note": "asked us by phone"}
    assert rita.post(add, form).status_code == 302
    row = Suppression.objects.for_tenant(tenant).get()
    assert (row.address, row.source, row.actor, row.note) == ("someone@example.com", "admin", "admin:rita",
                                                              "asked us by phone")  # fmt: skip
    again = rita.post(add, form)
    assert again.status_code == 200 and "already on the suppression list" in again.content.decode()
    bad = rita.post(add, {**form, "address": "not an address"})
    assert bad.status_code == 200 and "Enter a valid email address" in bad.content.decode()
    assert rev.get(add).status_code == 403 and rev.post(add, {**form, "address": "x@example.com"}).status_code == 403
    assert Suppression.dangerously_unscoped.count() == 1
    # The other tenant's marketer sees none of it.
    membership_add(tenant=other_tenant, username="otto", role=Role.MARKETER, password="pw-otto-123")
    otto = Client()
    otto.login(username="otto", password="pw-otto-123")
    assert "someone@example.com" not in otto.get(reverse("admin:datasets_suppression_changelist")).content.decode()
    assert otto.get(reverse("admin:datasets_suppression_change", args=[row.pk])).status_code == 404


@pytest.mark.parametrize("address", ["", "no-at-sign", "a@b@c"])
def test_a_malformed_address_is_refused_by_the_service(tenant, address):
    with pytest.raises(ValueError, match="not an email address"):
        address_suppress(tenant_id=tenant.pk, address=address, reason=SuppressionReason.MANUAL, source="api", by="x")
    assert not Contact.dangerously_unscoped.exists() and not Suppression.dangerously_unscoped.exists()


API = "/api/v1/suppressions/"


def test_a_crm_adds_addresses_one_or_many_and_reads_the_list(owner_api, tenant, other_tenant):
    one = owner_api.post(API, {"address": " Gone@Example.com ", "reason": "hard_bounce", "note": "550"}, format="json")
    assert one.status_code == 201 and one.json()["address"] == "gone@example.com"
    assert one.json()["source"] == "api" and one.json()["actor"]
    many = owner_api.post(API, [{"address": "a@example.com"}, {"address": "nope"}, {"address": "GONE@example.com"},
                                {"address": "b@example.com", "reason": "complaint"}], format="json")  # fmt: skip
    assert many.status_code == 207
    body = many.json()
    assert body["added"] == ["a@example.com", "b@example.com"] and body["already"] == ["gone@example.com"]
    assert [(e["row"], "not an email address" in e["error"]) for e in body["errors"]] == [(1, True)]
    rows = dict(Suppression.objects.for_tenant(tenant).values_list("address", "reason"))
    assert rows == {"gone@example.com": "hard_bounce", "a@example.com": "imported", "b@example.com": "complaint"}
    listing = owner_api.get(API, {"reason": "complaint"}).json()
    assert [row["address"] for row in listing["results"]] == ["b@example.com"]
    assert not Suppression.objects.for_tenant(other_tenant).exists()


def test_an_address_the_database_refuses_is_answered_by_row_while_the_others_are_kept(owner_api, tenant):
    """What the serializer lets through but PostgreSQL refuses (a CHECK added for this test, rolled back with it)
    loses that row alone, by its index, and one such address alone is a 400, not a 500."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {Suppression._meta.db_table} ADD CONSTRAINT refuse_me CHECK (note <> 'Refuse')")
    rows = [{"address": f"r{i}@example.com", "note": "Refuse" if i == 2 else ""} for i in range(4)] + ["r0@example.com"]
    reply = owner_api.post(API, rows, format="json")
    assert reply.status_code == 207, reply.content
    body = reply.json()
    assert body["added"] == ["r0@example.com", "r1@example.com", "r3@example.com"]
    assert body["already"] == ["r0@example.com"]  # row 4: the same address as row 0, in the same request
    (error,) = body["errors"]
    assert error["row"] == 2 and "the database refused this row" in error["error"] and "refuse_me" in error["error"]
    assert set(Suppression.objects.for_tenant(tenant).values_list("address", flat=True)) == {
        "r0@example.com", "r1@example.com", "r3@example.com"}  # fmt: skip
    one = owner_api.post(API, {"address": "r2@example.com", "note": "Refuse"}, format="json")
    assert one.status_code == 400 and "refuse_me" in one.json()["error"]["fields"]["non_field_errors"][0]


def test_a_list_names_each_bad_row_by_index_and_keeps_the_rest(owner_api, tenant):
    rows = ["ok1@example.com", 7, {"address": "ok2@example.com", "reason": "nope"}, {}, {"address": "ok3@example.com"}]
    body = owner_api.post(API, rows, format="json").json()
    assert body["added"] == ["ok1@example.com", "ok3@example.com"] and body["already"] == []
    errors = {error["row"]: error["error"] for error in body["errors"]}
    assert sorted(errors) == [1, 2, 3]
    assert "address" in errors[1] and "reason" in errors[2] and "address" in errors[3]
    assert owner_api.post(API, [], format="json").json() == {"added": [], "already": [], "errors": []}


def test_the_api_refuses_what_it_cannot_keep(owner_api, reviewer_api, outsider_api, tenant):
    assert owner_api.post(API, {"address": "x@example.com", "reason": "unsubscribed"}, format="json").status_code == 400
    assert owner_api.post(API, [{"address": "x@example.com"}] * 1001, format="json").status_code == 400
    assert owner_api.post(API, "[[[", content_type="application/json").status_code == 400
    assert reviewer_api.post(API, {"address": "x@example.com"}, format="json").status_code == 403
    mine = owner_api.post(API, {"address": "mine@example.com"}, format="json").json()
    assert owner_api.patch(f"{API}{mine['id']}/", {"reason": "manual"}, format="json").status_code == 405
    assert owner_api.delete(f"{API}{mine['id']}/").status_code == 405
    assert outsider_api.get(f"{API}{mine['id']}/").status_code == 404
    assert outsider_api.get(API).json()["results"] == []
    assert list(Suppression.objects.for_tenant(tenant).values_list("address", flat=True)) == ["mine@example.com"]
