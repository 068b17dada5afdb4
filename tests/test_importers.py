"""CSV imports: bad rows get a precise message, good rows around them are kept, re-imports are idempotent."""

import pytest
from django.core.management import CommandError, call_command

from datasets.importers import import_interactions, import_items, import_users
from datasets.models import Contact, Interaction, Item
from datasets.services import dataset_seed_synthetic


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_users_import_reports_bad_rows_and_keeps_good_ones(tenant, tmp_path):
    path = write(tmp_path, "users.csv", (
        "USER_ID,EMAIL,FIRST_NAME,AGE,LOCALE,PLAN_TIER\n"
        "u1,ana@example.com,Ana,34,en_US,gold\n"
        "u2,not-an-email,Bo,20,en_US,\n"
        "u3,cy@example.com,Cy,two hundred,en_GB,\n"
        ",dee@example.com,Dee,40,en_US,\n"
        "u5,eve@example.com,Eve,,fr_FR,\n"
    ))  # fmt: skip
    report = import_users(path, tenant=tenant)
    assert (report.rows, report.imported) == (5, 2)
    assert report.errors == [
        (3, "EMAIL 'not-an-email' is not a valid address"),
        (4, "AGE 'two hundred' is not a number"),
        (5, "USER_ID is empty"),
    ]
    ana = Contact.objects.for_tenant(tenant).get(external_id="u1")
    assert (ana.first_name, ana.age, ana.attributes) == ("Ana", 34, {"PLAN_TIER": "gold"})


def test_reimport_updates_instead_of_duplicating(tenant, tmp_path):
    path = write(tmp_path, "items.csv", "ITEM_ID,TITLE,GENRES,YEAR\nm1,Old Title,Comedy|Drama,1999\n")
    import_items(path, tenant=tenant)
    write(tmp_path, "items.csv", "ITEM_ID,TITLE,GENRES,YEAR\nm1,New Title,Comedy,1999\nm2,Other,Horror,\n")
    report = import_items(path, tenant=tenant)
    assert report.imported == 2
    items = Item.objects.for_tenant(tenant)
    assert items.count() == 2
    assert (items.get(external_id="m1").title, items.get(external_id="m1").genres) == ("New Title", ["Comedy"])


def test_a_repeated_id_in_one_file_is_noted_and_the_later_row_wins(tenant, tmp_path):
    report = import_items(write(tmp_path, "i.csv", "ITEM_ID,TITLE\nm1,First\nm2,Other\nm1,Second\n"), tenant=tenant)
    assert report.notices == [(4, "ITEM_ID 'm1' is also on line 2: this later row wins")]
    assert Item.objects.for_tenant(tenant).get(external_id="m1").title == "Second"


def test_interactions_with_unknown_ids_are_rejected_with_what_to_do(tenant, other_tenant, tmp_path):
    import_users(write(tmp_path, "u.csv", "USER_ID,EMAIL\nu1,a@example.com\n"), tenant=tenant)
    import_items(write(tmp_path, "i.csv", "ITEM_ID,TITLE\nm1,One\n"), tenant=tenant)
    import_items(write(tmp_path, "o.csv", "ITEM_ID,TITLE\nm9,Theirs\n"), tenant=other_tenant)
    path = write(tmp_path, "x.csv", (
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n"
        "u1,m1,1700000000,watch\n"
        "u1,m9,1700000001,watch\n"
        "u7,m1,1700000002,click\n"
        "u1,m1,yesterday,watch\n"
        "u1,m1,2024-05-01T10:00:00,click\n"
    ))  # fmt: skip
    report = import_interactions(path, tenant=tenant)
    assert report.imported == 2
    assert [line for line, _ in report.errors] == [3, 4, 5]
    assert "unknown ITEM_ID 'm9'" in report.errors[0][1]  # another tenant's item is unknown here
    assert "import it in the users file first" in report.errors[1][1]
    assert "neither unix seconds nor an ISO 8601 date" in report.errors[2][1]
    import_interactions(path, tenant=tenant)
    assert Interaction.objects.for_tenant(tenant).count() == 2


def test_missing_columns_are_named(tenant, tmp_path):
    report = import_users(write(tmp_path, "u.csv", "ID,MAIL\n1,a@example.com\n"), tenant=tenant)
    assert report.imported == 0
    assert "missing column(s) USER_ID, EMAIL" in report.errors[0][1]


def test_import_dataset_command(tenant, tmp_path, capsys):
    dataset_seed_synthetic(tenant=tenant, directory=tmp_path, n_items=40, n_contacts=20, n_interactions=400)
    call_command("import_dataset", tenant="acme", users=tmp_path / "users.csv", items=tmp_path / "items.csv",
                 interactions=tmp_path / "interactions.csv")  # fmt: skip
    out = capsys.readouterr().out
    assert "users.csv: users: 20 rows, 20 imported, 0 rejected" in out
    assert Interaction.objects.for_tenant(tenant).count() > 300
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        call_command("import_dataset", tenant="nope", users=tmp_path / "users.csv")
