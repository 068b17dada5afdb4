"""Importing a suppression file (another platform's export, or the tenant's own list): from the command line and
from the admin's upload page. Every refused row says its line and what to fix, the good rows land, an address
already listed keeps its row unless the file brings a stronger reason, and only the user's own tenants can be
written into."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from datasets.consent import contact_unsubscribe
from datasets.importers import import_suppressions
from datasets.models import ConsentSource, Suppression, SuppressionReason
from tenants.models import Role
from tenants.services import membership_add
from tests.test_sending import contact

FILE = (
    "email,reason,note\n"
    "Ana@Example.com,,from our old platform\n"  # line 2: blank reason, imported
    "bounced@example.com,Hard Bounce,550 user unknown\n"  # line 3
    "not-an-address,complaint,\n"  # line 4: refused
    "spam@example.com,spam,\n"  # line 5: refused (unknown reason)
    "unsub@example.com,complaint,FBL report\n"  # line 6: upgrades the unsubscribe already there
    "ana@example.com,unsubscribed,\n"  # line 7: the same address again, this later row wins
)


def listed(tenant) -> dict[str, tuple[str, str, str]]:
    return {r.address: (r.reason, r.source, r.note) for r in Suppression.objects.for_tenant(tenant)}


def test_a_file_lands_its_good_rows_and_says_what_to_fix(tenant, tmp_path):
    contact_unsubscribe(contact=contact(tenant, 1, email="unsub@example.com"), source=ConsentSource.ADMIN, by="x")
    path = tmp_path / "suppressions.csv"
    path.write_text(FILE)
    report = import_suppressions(path, tenant=tenant, by="import:test")
    assert (report.rows, report.imported) == (6, 2)
    assert report.errors == [
        (4, "EMAIL 'not-an-address' is not a valid address"),
        (5, "REASON 'spam' is not one of imported, unsubscribed, hard_bounce, complaint (blank: imported)"),
    ]
    assert report.notices == [(7, "EMAIL 'ana@example.com' is also on line 2: this later row wins")]
    assert report.duplicates == [
        (6, "unsub@example.com is already on the list (unsubscribed); now a complaint, the stronger reason")
    ]
    assert listed(tenant) == {
        "ana@example.com": (SuppressionReason.UNSUBSCRIBED, "import", ""),
        "bounced@example.com": (SuppressionReason.HARD_BOUNCE, "import", "550 user unknown"),
        "unsub@example.com": (SuppressionReason.COMPLAINT, "import", ""),
    }
    # Again: nothing new, and a weaker reason never replaces a stronger one.
    path.write_text("EMAIL,REASON\nbounced@example.com,unsubscribed\n")
    again = import_suppressions(path, tenant=tenant)
    assert (again.imported, again.duplicates) == (0, [(2, "bounced@example.com is already on the list (hard bounce)")])
    assert listed(tenant)["bounced@example.com"][0] == SuppressionReason.HARD_BOUNCE


def test_a_file_without_an_email_column_imports_nothing(tenant, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("address\nana@example.com\n")
    report = import_suppressions(path, tenant=tenant)
    assert report.imported == 0
    assert report.errors == [(1, "missing column(s) EMAIL; the header must name EMAIL once each")]
    assert not Suppression.dangerously_unscoped.exists()


def test_the_command_imports_suppressions_and_exits_with_what_was_refused(tenant, other_tenant, tmp_path, capsys):
    path = tmp_path / "suppressions.csv"
    path.write_text(FILE)
    try:
        call_command("import_dataset", "--tenant", tenant.slug, "--suppressions", str(path))
    except CommandError as exc:
        assert exc.returncode == 1 and "2 rows were rejected" in str(exc)
    else:
        raise AssertionError("two rows were refused: the command must say so in its exit status")
    out = capsys.readouterr().out
    assert "suppressions: 6 rows, 3 imported, 2 rejected" in out and "line 5: REASON 'spam'" in out
    assert len(listed(tenant)) == 3 and not listed(other_tenant)


def test_a_marketer_uploads_a_file_and_a_reviewer_or_another_tenant_cannot(tenant, other_tenant):
    membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123")
    membership_add(tenant=tenant, username="rev", role=Role.REVIEWER, password="pw-rev-12345")
    membership_add(tenant=other_tenant, username="otto", role=Role.MARKETER, password="pw-otto-123")
    clients = {}
    for name, password in (("rita", "pw-rita-123"), ("rev", "pw-rev-12345"), ("otto", "pw-otto-123")):
        clients[name] = Client()
        clients[name].login(username=name, password=password)
    url = reverse("admin:datasets_suppression_import")
    listing = clients["rita"].get(reverse("admin:datasets_suppression_changelist")).content.decode()
    assert url in listing  # the list's "Import a file" button

    page = clients["rita"].get(url)
    assert page.status_code == 200 and f'<option value="{tenant.pk}" selected>' in page.content.decode()
    upload = SimpleUploadedFile("export.csv", FILE.encode(), content_type="text/csv")
    answer = clients["rita"].post(url, {"tenant": tenant.pk, "file": upload})
    text = answer.content.decode()
    assert answer.status_code == 200 and "3 addresses added" in text
    assert "Line 4: EMAIL &#x27;not-an-address&#x27; is not a valid address" in text
    assert set(listed(tenant)) == {"ana@example.com", "bounced@example.com", "unsub@example.com"}
    assert listed(tenant)["ana@example.com"][1] == "import"

    # A reviewer changes no data; another tenant's marketer cannot name this tenant (not among the choices).
    assert clients["rev"].get(url).status_code == 403
    upload = SimpleUploadedFile("x.csv", b"EMAIL\nx@example.com\n", content_type="text/csv")
    assert clients["rev"].post(url, {"tenant": tenant.pk, "file": upload}).status_code == 403
    upload = SimpleUploadedFile("x.csv", b"EMAIL\nx@example.com\n", content_type="text/csv")
    refused = clients["otto"].post(url, {"tenant": tenant.pk, "file": upload})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert "x@example.com" not in listed(tenant) and not listed(other_tenant)


def test_an_upload_that_is_not_a_csv_is_refused_with_what_to_do(tenant, settings):
    membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123")
    client = Client()
    client.login(username="rita", password="pw-rita-123")
    url = reverse("admin:datasets_suppression_import")
    png = SimpleUploadedFile("logo.png", b"\x89PNG\r\n\x1a\n" + bytes(200), content_type="image/png")
    text = client.post(url, {"tenant": tenant.pk, "file": png}).content.decode()
    assert "0 addresses added" in text and "binary" in text.lower()
    settings.DATASET_IMPORT_MAX_BYTES = 10
    big = SimpleUploadedFile("big.csv", b"EMAIL\nlonger@example.com\n", content_type="text/csv")
    text = client.post(url, {"tenant": tenant.pk, "file": big}).content.decode()
    assert "the limit is 10 bytes" in text and "split it" in text
    assert not Suppression.dangerously_unscoped.exists()
