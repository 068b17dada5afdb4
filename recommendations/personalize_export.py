"""A tenant's users, items and interactions as Amazon Personalize's bulk CSV files, with the Avro schemas that
describe them (the video-on-demand columns of the seed: Interactions USER_ID/ITEM_ID/TIMESTAMP/EVENT_TYPE; Items
with TITLE, YEAR, IMDB ratings, a textual PLOT, maturity ratings, categorical GENRES, CREATION_TIMESTAMP and
PROMOTION). Names and e-mail addresses never leave: Personalize needs ids and behaviour, not who people are."""

import csv
import io
import json
from dataclasses import dataclass

from datasets.models import Contact, Interaction, Item


def _schema(name: str, fields: list[dict]) -> str:
    record = {"type": "record", "name": name, "namespace": "com.amazonaws.personalize.schema", "fields": fields,
              "version": "1.0"}  # fmt: skip
    return json.dumps(record)


def _optional(name: str, kind: str, **flags) -> dict:
    return {"name": name, "type": ["null", kind], **flags}


SCHEMAS = {
    "Interactions": _schema("Interactions", [
        {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
    ]),
    "Items": _schema("Items", [
        {"name": "ITEM_ID", "type": "string"}, {"name": "TITLE", "type": "string"}, _optional("YEAR", "int"),
        _optional("IMDB_RATING", "float"), _optional("IMDB_NUMBEROFVOTES", "int"),
        _optional("PLOT", "string", textual=True), _optional("US_MATURITY_RATING", "int"),
        _optional("US_MATURITY_RATING_STRING", "string"), _optional("GENRES", "string", categorical=True),
        _optional("CREATION_TIMESTAMP", "long"), _optional("PROMOTION", "string"),
    ]),
    "Users": _schema("Users", [
        {"name": "USER_ID", "type": "string"}, _optional("AGE", "int"), _optional("GENDER", "string", categorical=True),
    ]),
}  # fmt: skip
COLUMNS = {kind: [field["name"] for field in json.loads(schema)["fields"]] for kind, schema in SCHEMAS.items()}


@dataclass(frozen=True)
class Export:
    kind: str  # "Interactions", "Items" or "Users"
    body: bytes  # the CSV file
    rows: int
    last_id: int = 0  # for interactions: the newest row exported, where the next incremental export starts


def export_users(*, tenant) -> Export:
    rows = Contact.objects.for_tenant(tenant).order_by("pk").values_list("external_id", "age", "gender")
    return _export("Users", [[uid, age, gender] for uid, age, gender in rows.iterator()])


def export_items(*, tenant) -> Export:
    fields = ("external_id", "title", "year", "imdb_rating", "imdb_votes", "plot", "maturity_rating",
              "maturity_rating_string", "genres", "creation_timestamp", "promotion")  # fmt: skip
    rows = Item.objects.for_tenant(tenant).order_by("pk").values_list(*fields)
    return _export("Items", [_item_row(*row) for row in rows.iterator()])


def export_interactions(*, tenant, after_id: int = 0) -> Export:
    """The interactions added since `after_id` (all of them for 0), oldest row first."""
    rows = (
        Interaction.objects.for_tenant(tenant).filter(pk__gt=after_id).order_by("pk")
        .values_list("pk", "contact__external_id", "item__external_id", "timestamp", "event_type")
    )  # fmt: skip
    table, last_id = [], after_id
    for pk, user, item, at, event in rows.iterator():
        table.append([user, item, int(at.timestamp()), event])
        last_id = pk
    return _export("Interactions", table, last_id)


def _item_row(external_id, title, year, rating, votes, plot, maturity, maturity_string, genres, created, promotion):
    return [
        external_id, title, year, rating, votes, plot, maturity, maturity_string,
        "|".join(genres or []) or None,  # Personalize separates a categorical field's values with "|"
        int(created.timestamp()) if created else None, "true" if promotion else "false",
    ]  # fmt: skip


def _export(kind: str, rows: list[list], last_id: int = 0) -> Export:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS[kind])
    writer.writerows([["" if value is None else value for value in row] for row in rows])
    return Export(kind, out.getvalue().encode(), len(rows), last_id)
