"""Consent changes only through explicit, recorded paths: an import, the API, the unsubscribe link or the admin
each leaves a ConsentEvent (when, how, by whom); nothing re-subscribes a contact silently."""

import re

from django.urls import reverse

from campaigns.unsubscribe import unsubscribe_url
from datasets.consent import contact_unsubscribe
from datasets.importers import import_items, import_users
from datasets.models import ConsentEvent, ConsentSource, Contact, Item

API = "/api/v1"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def contact(tenant, external_id):
    return Contact.objects.for_tenant(tenant).get(external_id=external_id)


def events(tenant, external_id):
    rows = ConsentEvent.objects.for_tenant(tenant).filter(contact__external_id=external_id).order_by("at", "pk")
    return [(e.subscribed, e.source, e.actor) for e in rows]


def test_reimport_without_an_unsubscribed_column_keeps_opt_outs(tenant, tmp_path):
    import_users(
        write(tmp_path, "u.csv", "USER_ID,EMAIL,UNSUBSCRIBED\nu1,a@example.com,true\nu2,b@example.com,\n"),
        tenant=tenant,
    )
    first = contact(tenant, "u1")
    assert first.unsubscribed and first.unsubscribed_at
    import_users(write(tmp_path, "u.csv", "USER_ID,EMAIL\nu1,a@example.com\nu2,b@example.com\n"), tenant=tenant)
    again = contact(tenant, "u1")
    assert (again.unsubscribed, again.unsubscribed_at) == (True, first.unsubscribed_at)
    assert not contact(tenant, "u2").unsubscribed


def test_an_import_never_resubscribes_and_says_so(tenant, tmp_path):
    import_users(write(tmp_path, "u.csv", "USER_ID,EMAIL,UNSUBSCRIBED\nu1,a@example.com,yes\n"), tenant=tenant)
    report = import_users(
        write(tmp_path, "u.csv", "USER_ID,EMAIL,UNSUBSCRIBED\nu1,a@example.com,false\n"), tenant=tenant
    )
    assert contact(tenant, "u1").unsubscribed
    assert report.notices == [
        (
            2,
            "USER_ID 'u1' stays unsubscribed: an import never re-subscribes a contact; "
            "POST /api/v1/contacts/u1/resubscribe/ with the contact's consent does",
        )
    ]
    assert events(tenant, "u1") == [(False, "import", "import:u.csv")]
    assert ConsentEvent.objects.for_tenant(tenant).get().note == "u.csv line 2"


def test_an_import_unsubscribes_an_existing_contact_on_record(tenant, tmp_path):
    import_users(write(tmp_path, "u.csv", "USER_ID,EMAIL\nu1,a@example.com\n"), tenant=tenant)
    import_users(write(tmp_path, "u.csv", "USER_ID,EMAIL,UNSUBSCRIBED\nu1,a@example.com,1\n"), tenant=tenant, by="ops")
    assert contact(tenant, "u1").unsubscribed_at
    assert events(tenant, "u1") == [(False, "import", "ops")]


def test_reimport_with_fewer_columns_leaves_the_others_alone(tenant, tmp_path):
    import_users(
        write(tmp_path, "u.csv", "USER_ID,EMAIL,FIRST_NAME,AGE,PLAN\nu1,a@example.com,Ana,34,gold\n"), tenant=tenant
    )
    import_users(write(tmp_path, "u.csv", "USER_ID,EMAIL,TIER\nu1,new@example.com,3\n"), tenant=tenant)
    ana = contact(tenant, "u1")
    assert (ana.email, ana.first_name, ana.age) == ("new@example.com", "Ana", 34)
    assert ana.attributes == {"PLAN": "gold", "TIER": "3"}
    import_items(write(tmp_path, "i.csv", "ITEM_ID,TITLE,PLOT,YEAR,GENRES\nm1,One,A plot.,1999,Drama\n"), tenant=tenant)
    import_items(write(tmp_path, "i.csv", "ITEM_ID,TITLE\nm1,One (remastered)\n"), tenant=tenant)
    item = Item.objects.for_tenant(tenant).get(external_id="m1")
    assert (item.title, item.plot, item.year, item.genres) == ("One (remastered)", "A plot.", 1999, ["Drama"])


def test_api_patch_unsubscribes_on_record_and_never_resubscribes(owner_api, tenant, catalog):
    url = f"{API}/contacts/u0/"
    body = owner_api.patch(url, {"unsubscribed": True}, format="json").json()
    assert body["unsubscribed"] is True and body["unsubscribed_at"]
    assert events(tenant, "u0") == [(False, "api", "api-key:owner key")]
    back = owner_api.patch(url, {"unsubscribed": False, "first_name": "Zed"}, format="json")
    assert back.status_code == 400 and "resubscribe/" in str(back.json()["error"]["fields"]["unsubscribed"])
    put = owner_api.put(url, {"external_id": "u0", "email": "user0@example.com", "unsubscribed": False}, format="json")
    assert put.status_code == 400
    assert contact(tenant, "u0").unsubscribed and contact(tenant, "u0").first_name == "Name0"
    assert owner_api.patch(url, {"first_name": "Zed"}, format="json").json()["unsubscribed"] is True


def test_api_create_with_unsubscribed_is_recorded(owner_api, tenant):
    created = owner_api.post(
        f"{API}/contacts/", {"external_id": "c1", "email": "c@example.com", "unsubscribed": True}, format="json"
    )
    assert created.status_code == 201 and created.json()["unsubscribed_at"]
    assert events(tenant, "c1") == [(False, "api", "api-key:owner key")]


def test_unsubscribe_and_resubscribe_actions(owner_api, reviewer_api, tenant, catalog):
    url = f"{API}/contacts/u1/"
    assert reviewer_api.post(url + "unsubscribe/").status_code == 403
    done = owner_api.post(url + "unsubscribe/", {"note": "asked by phone"}, format="json")
    assert done.status_code == 200 and done.json()["unsubscribed"] is True
    assert owner_api.post(url + "unsubscribe/").status_code == 200  # already out: nothing new recorded
    refused = owner_api.post(url + "resubscribe/", {}, format="json")
    assert refused.status_code == 400 and "consent" in refused.json()["error"]["fields"]
    back = owner_api.post(url + "resubscribe/", {"consent": "opted in again on the web form"}, format="json")
    assert back.status_code == 200 and back.json()["unsubscribed"] is False and back.json()["unsubscribed_at"] is None
    assert events(tenant, "u1") == [(False, "api", "api-key:owner key"), (True, "api", "api-key:owner key")]
    history = owner_api.get(url + "consent/").json()
    assert [(e["subscribed"], e["note"]) for e in history] == [
        (False, "asked by phone"),
        (True, "opted in again on the web form"),
    ]


def test_consent_actions_on_another_tenants_contact_are_404(owner_api, other_catalog):
    theirs = f"{API}/contacts/{other_catalog[0][0].external_id}/"
    for action in ("unsubscribe/", "resubscribe/", "consent/"):
        method = owner_api.get if action == "consent/" else owner_api.post
        assert method(theirs + action, {"consent": "x"}, format="json").status_code == 404
    assert not other_catalog[0][0].__class__.dangerously_unscoped.get(pk=other_catalog[0][0].pk).unsubscribed


def test_the_unsubscribe_link_is_recorded(client, tenant, catalog):
    path = re.sub(r"^https?://[^/]+", "", unsubscribe_url(tenant.pk, catalog[0][2].pk))
    assert client.post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert client.post(path).status_code == 200  # a second click records nothing new
    assert events(tenant, "u2") == [(False, "unsubscribe-link", "recipient")]


def test_the_admin_cannot_flip_the_flag_without_a_record(staff_client, tenant, catalog):
    mine = catalog[0][3]
    change = reverse("admin:datasets_contact_change", args=[mine.pk])
    form = {
        "tenant": tenant.pk,
        "external_id": mine.external_id,
        "email": mine.email,
        "first_name": "Renamed",
        "attributes": "{}",
        "unsubscribed": "on",
        "unsubscribed_at_0": "2020-01-01",
        "unsubscribed_at_1": "10:00",
        # The consent history inline's management form, as the page sends it (no history yet).
        "consent_events-TOTAL_FORMS": "0",
        "consent_events-INITIAL_FORMS": "0",
    }
    assert staff_client.post(change, form).status_code == 302
    mine.refresh_from_db()
    assert (mine.first_name, mine.unsubscribed, mine.unsubscribed_at) == ("Renamed", False, None)
    action = {"action": "unsubscribe_selected", "_selected_action": [mine.pk]}
    staff_client.post(reverse("admin:datasets_contact_changelist"), action)
    mine.refresh_from_db()
    assert mine.unsubscribed and mine.unsubscribed_at
    assert events(tenant, mine.external_id) == [(False, "admin", "admin:rita")]
    assert "consent" in staff_client.get(change).content.decode().lower()


def test_a_marketer_sees_the_contacts_consent_history_on_its_page(staff_client, tenant, catalog):
    mine = catalog[0][2]
    contact_unsubscribe(contact=mine, source=ConsentSource.UNSUBSCRIBE_LINK, by="recipient", note="clicked the link")
    page = staff_client.get(reverse("admin:datasets_contact_change", args=[mine.pk])).content.decode()
    assert "Consent history" in page and "clicked the link" in page and "recipient" in page
