"""Personalize's data formats, checked as its imports check them: Avro record schemas, and bulk CSV files whose
columns and values must fit the schema (one bad row fails the whole import job, with the line that broke it)."""

import csv
import io
import json
import re

from awsemu.wire import AwsError

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,149}$")
REQUIRED = {"Interactions": {"USER_ID", "ITEM_ID", "TIMESTAMP"}, "Items": {"ITEM_ID"}, "Users": {"USER_ID"}}
DOMAIN_REQUIRED = {("VIDEO_ON_DEMAND", "Interactions"): {"EVENT_TYPE"}, ("VIDEO_ON_DEMAND", "Items"): {"GENRES"}}
ID_COLUMN = {"Items": "ITEM_ID", "Users": "USER_ID"}  # imports upsert rows by these; interactions accumulate
NUMERIC = {"int": int, "long": int, "float": float, "double": float}


class BadData(ValueError):
    """Why an import job fails."""


def schema_fields(text) -> dict[str, str]:
    """An Avro record schema's fields: NAME -> type ("string", "long", ...; "null|string" when optional)."""
    try:
        schema = json.loads(text)
        fields = schema["fields"]
        assert schema.get("type") == "record" and isinstance(fields, list) and fields
        parsed = {}
        for entry in fields:
            kind = "|".join(entry["type"]) if isinstance(entry["type"], list) else entry["type"]
            assert isinstance(kind, str) and FIELD_NAME.match(entry["name"])
            parsed[entry["name"].upper()] = kind
        return parsed
    except (ValueError, TypeError, KeyError, AssertionError):
        raise AwsError("InvalidInputException", 400, "The schema is not a valid Avro record schema.") from None


def missing_fields(fields: dict[str, str], kind: str, domain: str | None) -> set[str]:
    """The fields a dataset of this type (in this domain) needs that the schema lacks."""
    return (REQUIRED[kind] | DOMAIN_REQUIRED.get((domain, kind), set())) - set(fields)


def csv_rows(text: str, columns: dict[str, str], kind: str) -> list[dict]:
    """The CSV's rows, typed by the schema; BadData says what is wrong with it."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().upper() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in columns]
    if unknown:
        raise BadData(f"Column {unknown[0]} in the CSV is not in the schema.")
    required = {name for name, kind_ in columns.items() if "null" not in kind_}
    missing = sorted(required - set(header))
    if missing:
        raise BadData(f"Required column {missing[0]} is missing from the CSV.")
    rows = []
    for line, raw in enumerate(reader, start=2):
        row = {name.strip().upper(): value for name, value in raw.items() if name and value not in ("", None)}
        for name, value in row.items():
            cast = NUMERIC.get(columns[name].replace("null", "").strip("|"))
            try:
                row[name] = cast(value) if cast else value
            except ValueError:
                raise BadData(f"Line {line}: {name} {value!r} is not a {columns[name]}.") from None
        empty = sorted(REQUIRED[kind] & required - set(row))
        if empty:
            raise BadData(f"Line {line}: {empty[0]} is empty.")
        rows.append(row)
    return rows


def merged(imports: list[tuple[str, list[dict]]], kind: str) -> list[dict]:
    """What a dataset holds after its imports, oldest first, as (importMode, rows): FULL replaces everything,
    INCREMENTAL upserts users and items by id and adds interactions."""
    id_column = ID_COLUMN.get(kind)
    rows: dict = {}
    for n, (mode, batch) in enumerate(imports):
        if mode == "FULL":
            rows = {}
        for m, row in enumerate(batch):
            rows[row[id_column] if id_column else (n, m)] = row
    return list(rows.values())
