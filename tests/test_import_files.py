"""Hostile files for `import_dataset`: every one gets a precise message (line, column, what to fix), the good rows
around a bad one land, no file ever ends in a traceback, and the exit code says whether everything landed."""

import codecs
import os
import random
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from datasets.importers import import_interactions, import_items, import_users
from datasets.models import Contact, Interaction, Item

GOOD_USERS = "USER_ID,EMAIL,FIRST_NAME,AGE\nu1,a@example.com,Ana,34\nu2,b@example.com,Bo,20\n"


def write(tmp_path, name, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def run(**files) -> tuple[int, str]:
    """import_dataset in-process: (exit code, everything it printed)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("import_dataset", tenant="acme", stdout=out, stderr=err, **files)
        code = 0
    except CommandError as exc:
        err.write(str(exc))
        code = exc.returncode
    return code, out.getvalue() + err.getvalue()


def names(tenant):
    return dict(Contact.objects.for_tenant(tenant).values_list("external_id", "first_name"))


def test_cp1252_and_utf16_files_are_read_and_named(tenant, tmp_path):
    latin = write(tmp_path, "latin.csv", "USER_ID,EMAIL,FIRST_NAME\nu1,z@example.com,Zoé\n".encode("cp1252"))
    report = import_users(latin, tenant=tenant)
    assert report.imported == 1 and names(tenant) == {"u1": "Zoé"}
    assert report.notices == [(2, "not valid UTF-8 (byte 0xe9); read as Windows-1252: save the file as UTF-8")]
    for name, data in {
        "bom16.csv": "USER_ID,EMAIL,FIRST_NAME\nu2,y@example.com,Jürgen\n".encode("utf-16"),
        "le16.csv": "USER_ID,EMAIL,FIRST_NAME\nu3,x@example.com,Åsa\n".encode("utf-16-le"),
        "bom8.csv": codecs.BOM_UTF8 + "USER_ID,EMAIL,FIRST_NAME\nu4,w@example.com,Ōta\n".encode(),
    }.items():
        assert import_users(write(tmp_path, name, data), tenant=tenant).imported == 1, name
    assert names(tenant) == {"u1": "Zoé", "u2": "Jürgen", "u3": "Åsa", "u4": "Ōta"}


def test_a_nul_byte_costs_only_its_row(tenant, tmp_path):
    path = write(tmp_path, "u.csv", GOOD_USERS + "u3,c@example.com,C\x00y,40\nu4,d@example.com,Di,50\n")
    report = import_users(path, tenant=tenant)
    assert report.imported == 3
    assert report.errors == [(4, "FIRST_NAME contains a NUL byte (\\0) at character 2: remove it")]


@pytest.mark.parametrize("age", ["inf", "1e999", "NaN", "-inf", "34.5"])
def test_ages_that_are_not_whole_numbers_are_rejected(tenant, tmp_path, age):
    report = import_users(write(tmp_path, "u.csv", GOOD_USERS + f"u3,c@example.com,Cy,{age}\n"), tenant=tenant)
    assert report.imported == 2
    assert report.errors == [(4, f"AGE {age!r} is not a whole number")]


def test_a_huge_plot_and_an_unclosed_quote_cost_only_their_rows(tenant, tmp_path):
    path = write(
        tmp_path,
        "i.csv",
        (f'ITEM_ID,TITLE,PLOT\nm1,Long,{"x" * 140_000}\nm2,"Open title,A plot.\nm3,Three,A plot.\nm4,Four,A plot.\n'),
    )
    report = import_items(path, tenant=tenant)
    assert report.errors == [
        (2, "PLOT is 140,000 characters long; at most 20,000 are allowed: shorten it"),
        (
            3,
            "a quote opened on line 3 is never closed, so lines 3-5 read as one field: "
            'close the quote, or double a quote inside a field ("")',
        ),
    ]
    assert sorted(Item.objects.for_tenant(tenant).values_list("external_id", flat=True)) == ["m3", "m4"]
    assert report.summary() == "items: 4 rows, 2 imported, 2 rejected"


def test_a_header_padded_with_spaces_or_lowercase_is_understood(tenant, tmp_path):
    report = import_users(
        write(tmp_path, "u.csv", " user_id , Email ,FIRST_NAME \nu1,a@example.com,Ana\n"), tenant=tenant
    )
    assert (report.imported, report.errors) == (1, [])


def test_timestamps_before_1970_or_in_the_future_are_rejected(tenant, tmp_path):
    import_users(write(tmp_path, "u.csv", GOOD_USERS), tenant=tenant)
    import_items(
        write(tmp_path, "i.csv", "ITEM_ID,TITLE,CREATION_TIMESTAMP\nm1,One,-5\nm2,Two,1700000000\n"), tenant=tenant
    )
    path = write(
        tmp_path,
        "x.csv",
        (
            "USER_ID,ITEM_ID,TIMESTAMP\n"
            "u1,m2,1700000000\n"
            "u1,m2,-86400\n"
            "u1,m2,1969-07-20T20:17:00\n"
            "u1,m2,4102444800\n"
            "u1,m2,1700000000000\n"
            "u1,m2,1e999\n"
        ),
    )
    report = import_interactions(path, tenant=tenant)
    assert report.imported == 1
    assert report.errors == [
        (3, "TIMESTAMP -86400 is 1969-12-31, before 1970: give unix seconds or an ISO 8601 date"),
        (4, "TIMESTAMP '1969-07-20T20:17:00' is 1969-07-20, before 1970: give unix seconds or an ISO 8601 date"),
        (5, "TIMESTAMP 4102444800 is 2100-01-01, in the future: give unix seconds or an ISO 8601 date"),
        (6, "TIMESTAMP 1700000000000 is far in the future: it looks like milliseconds; give unix seconds"),
        (7, "TIMESTAMP '1e999' is neither unix seconds nor an ISO 8601 date"),
    ]
    assert Item.objects.for_tenant(tenant).get(external_id="m2").creation_timestamp
    assert not Item.objects.for_tenant(tenant).filter(external_id="m1").exists()


def test_the_csv_import_reports_duplicates_with_their_line(tenant, tmp_path):
    import_users(write(tmp_path, "u.csv", GOOD_USERS), tenant=tenant)
    import_items(write(tmp_path, "i.csv", "ITEM_ID,TITLE\nm1,One\n"), tenant=tenant)
    rows = "USER_ID,ITEM_ID,TIMESTAMP\nu1,m1,1700000000\nu2,m1,1700000000\nu1,m1,2023-11-14T22:13:20+00:00\n"
    first = import_interactions(write(tmp_path, "x.csv", rows), tenant=tenant)
    assert (first.imported, first.duplicates) == (2, [(4, "duplicate of line 2 in this file: skipped")])
    again = import_interactions(write(tmp_path, "x.csv", rows), tenant=tenant)
    assert again.imported == 0 and [line for line, _ in again.duplicates] == [2, 3, 4]
    assert again.duplicates[0][1] == "already stored: skipped"
    assert again.summary() == "interactions: 3 rows, 0 imported, 0 rejected, 3 duplicates skipped"
    assert Interaction.objects.for_tenant(tenant).count() == 2


def test_files_over_the_size_limit_are_refused(tenant, tmp_path, settings):
    settings.DATASET_IMPORT_MAX_BYTES = 40
    report = import_users(write(tmp_path, "u.csv", GOOD_USERS), tenant=tenant)
    assert report.imported == 0
    size = len(GOOD_USERS)
    assert report.errors == [
        (0, f"the file is {size} bytes; the limit is 40 bytes (DATASET_IMPORT_MAX_BYTES): split it")
    ]


def hostile_files(tmp_path) -> dict[str, tuple[str, Path, str]]:
    """name: (option, path, what the message must say)."""
    rng = random.Random(9)
    directory = tmp_path / "hostile"
    directory.mkdir()
    cases = {
        "cp1252": ("users", "USER_ID,EMAIL,FIRST_NAME\nu1,z@example.com,Zoé\n".encode("cp1252"), "Windows-1252"),
        "utf16": ("users", "USER_ID,EMAIL\nu1,a@example.com\n".encode("utf-16"), "1 imported"),
        "binary": ("users", b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(3000)), "ZIP archive"),
        "random": ("users", bytes(rng.randrange(256) for _ in range(4096)), "binary"),
        "nul": ("users", (GOOD_USERS + "u3,c@example.com,C\x00y,4\n").encode(), "line 4: FIRST_NAME contains a NUL"),
        "age_inf": ("users", (GOOD_USERS + "u3,c@example.com,Cy,inf\n").encode(), "AGE 'inf' is not a whole"),
        "age_1e999": ("users", (GOOD_USERS + "u3,c@example.com,Cy,1e999\n").encode(), "AGE '1e999'"),
        "age_nan": ("users", (GOOD_USERS + "u3,c@example.com,Cy,NaN\n").encode(), "AGE 'NaN'"),
        "plot": ("items", f"ITEM_ID,TITLE,PLOT\nm1,T,{'p' * 200_000}\nm2,U,ok\n".encode(), "PLOT is 200,000"),
        "quote": ("items", b'ITEM_ID,TITLE\nm1,"Open\nm2,Two\n', "a quote opened on line 2 is never closed"),
        "padded": ("users", b" USER_ID , EMAIL \nu1,a@example.com\n", "1 imported, 0 rejected"),
        "ts_1969": ("interactions", b"USER_ID,ITEM_ID,TIMESTAMP\nu1,m1,-1\n", "before 1970"),
        "ts_future": ("interactions", b"USER_ID,ITEM_ID,TIMESTAMP\nu1,m1,99999999999\n", "in the future"),
        "ts_year_1": ("interactions", b"USER_ID,ITEM_ID,TIMESTAMP\nu1,m1,0001-01-01T00:00:00+05:00\n", "before 1970"),
        "ts_year_9999": ("interactions", b"USER_ID,ITEM_ID,TIMESTAMP\nu1,m1,9999-12-31T23:59:59-05:00\n", "future"),
        "bom_then_cp1252": (
            "users",
            codecs.BOM_UTF8 + "USER_ID,EMAIL\nu1,é@x.com\n".encode("cp1252"),
            "not valid UTF-8",
        ),
        "utf16_cut": ("users", "USER_ID,EMAIL\nu1,a@example.com\n".encode("utf-16") + b"\x00", "not valid UTF-16"),
        "empty": ("users", b"", "the file is empty"),
        "header_only": ("users", b"USER_ID,EMAIL\n", "no rows after the header"),
        "wrong_columns": ("items", b"ID,NAME\n1,x\n", "missing column(s) ITEM_ID, TITLE"),
    }
    files = {
        name: (option, write(directory, f"{name}.csv", data), said) for name, (option, data, said) in cases.items()
    }
    files["directory"] = ("users", directory, "is a directory, not a file")
    files["missing"] = ("users", directory / "nope.csv", "no such file")
    return files


ALL_LANDED = {"cp1252", "utf16", "padded"}
SOME_LANDED = {"nul", "age_inf", "age_1e999", "age_nan", "plot", "quote"}


def test_no_hostile_file_ends_in_a_traceback(tenant, catalog, tmp_path):
    for name, (option, path, said) in hostile_files(tmp_path).items():
        code, output = run(**{option: path})
        assert "Traceback" not in output, (name, output)
        assert said in output, (name, output)
        assert code == (0 if name in ALL_LANDED else 1 if name in SOME_LANDED else 2), (name, code, output)


def test_the_exit_code_says_whether_everything_landed(tenant, tmp_path):
    good = write(tmp_path, "u.csv", GOOD_USERS)
    assert run(users=good)[0] == 0
    code, output = run(users=write(tmp_path, "bad.csv", GOOD_USERS + "u3,nope,Cy,4\n"))
    assert code == 1 and "1 row was rejected" in output
    code, output = run(users=write(tmp_path, "none.csv", "USER_ID,EMAIL\nu9,nope\n"))
    assert code == 2 and "nothing was imported" in output.lower()
    assert "exit status" in call_command_help()


def call_command_help() -> str:
    from datasets.management.commands.import_dataset import Command

    return Command().create_parser("manage.py", "import_dataset").format_help()


def test_the_command_exit_code_in_a_real_process(transactional_db, tenant, tmp_path):
    db = settings.DATABASES["default"]
    login = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    url = f"postgres://{login}@{db['HOST']}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(settings.BASE_DIR)}
    bad = write(tmp_path, "bad.csv", GOOD_USERS + "u3,c@example.com,C\x00y,4\n")
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "import_dataset",
            "--tenant",
            "acme",
            "--users",
            str(bad),
            "--items",
            str(write(tmp_path, "bin.csv", bytes(range(256)) * 8)),
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "line 4: FIRST_NAME contains a NUL byte" in done.stdout and "binary" in done.stdout
    assert Contact.objects.for_tenant(tenant).count() == 2


def test_a_row_the_database_refuses_costs_only_itself(tenant, tmp_path):
    """A rule only the database knows (here a trigger) refuses one row: the batch is stored row by row instead."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN IF NEW.first_name = 'Boom' THEN "
            "RAISE EXCEPTION 'Boom is refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_boom BEFORE INSERT OR UPDATE ON datasets_contact "
            "FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
        )
    report = import_users(write(tmp_path, "u.csv", GOOD_USERS + "u3,c@example.com,Boom,4\n"), tenant=tenant)
    assert report.imported == 2 and names(tenant) == {"u1": "Ana", "u2": "Bo"}
    assert [(line, reason.splitlines()[0]) for line, reason in report.errors] == [
        (4, "the database refused this row: Boom is refused")
    ]


FUZZ_BASE = {
    import_users: 'USER_ID,EMAIL,FIRST_NAME,AGE,UNSUBSCRIBED,X\nu1,a@example.com,Ana,34,true,1\nu2,b@example.com,"Bo, Jr",20,,\n',
    import_items: 'ITEM_ID,TITLE,PLOT,YEAR,GENRES,CREATION_TIMESTAMP\nm1,One,"A ""plot""\nline2",1999,Drama|Comedy,1700000000\n',
    import_interactions: "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu0,m1,1700000000,watch\nu1,m2,2024-01-01T00:00:00,click\n",
}
FUZZ_BYTES = [
    b'"',
    b",",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"\xe9",
    b"\xfe\xff",
    b"inf",
    b"-",
    b"1e999",
    b'""',
    b"\xef\xbb\xbf",
]


def test_mangled_files_never_raise_and_every_row_is_accounted_for(tenant, catalog, tmp_path):
    rng = random.Random(4)
    for i in range(150):
        importer = rng.choice(list(FUZZ_BASE))
        data = bytearray(FUZZ_BASE[importer].encode())
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data) + 1)
            if rng.random() < 0.3:
                del data[at : at + rng.randint(1, 5)]
            else:
                data[at:at] = rng.choice(FUZZ_BYTES)
        report = importer(write(tmp_path, f"f{i}.csv", bytes(data)), tenant=tenant)
        rejected = [line for line, _ in report.errors if line]
        assert report.imported + len(rejected) + len(report.duplicates) <= max(report.rows, 1), (bytes(data), report)
        assert all(reason for _, reason in report.errors + report.notices + report.duplicates)
