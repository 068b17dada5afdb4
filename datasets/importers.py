"""CSV imports in Amazon Personalize's bulk formats. A bad row is reported with its line and reason;
the good rows around it are imported. Re-importing the same file is safe (upserts)."""

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from datasets.models import Contact, Interaction, Item

BATCH = 2000
USER_COLUMNS = ("USER_ID", "EMAIL")
ITEM_COLUMNS = ("ITEM_ID", "TITLE")
INTERACTION_COLUMNS = ("USER_ID", "ITEM_ID", "TIMESTAMP")


class RowError(ValueError):
    pass


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def summary(self) -> str:
        return f"{self.kind}: {self.rows} rows, {self.imported} imported, {len(self.errors)} rejected"


def _int(row: dict, column: str, *, low: int | None = None, high: int | None = None) -> int | None:
    raw = (row.get(column) or "").strip()
    if not raw:
        return None
    try:
        value = int(float(raw))
    except ValueError:
        raise RowError(f"{column} {raw!r} is not a number") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise RowError(f"{column} {value} is outside {low}..{high}")
    return value


def _float(row: dict, column: str) -> float | None:
    raw = (row.get(column) or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise RowError(f"{column} {raw!r} is not a number") from None


def _timestamp(row: dict, column: str, *, required: bool) -> datetime | None:
    raw = (row.get(column) or "").strip()
    if not raw:
        if required:
            raise RowError(f"{column} is empty")
        return None
    try:
        return datetime.fromtimestamp(int(float(raw)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise RowError(f"{column} {raw!r} is neither unix seconds nor an ISO 8601 date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _required(row: dict, column: str, limit: int) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise RowError(f"{column} is empty")
    if len(value) > limit:
        raise RowError(f"{column} is longer than {limit} characters")
    return value


def parse_user(row: dict) -> dict:
    email = _required(row, "EMAIL", 254)
    try:
        validate_email(email)
    except ValidationError:
        raise RowError(f"EMAIL {email!r} is not a valid address") from None
    known = {"USER_ID", "EMAIL", "FIRST_NAME", "LAST_NAME", "AGE", "GENDER", "LOCALE", "UNSUBSCRIBED"}
    return {
        "external_id": _required(row, "USER_ID", 100),
        "email": email,
        "first_name": (row.get("FIRST_NAME") or "").strip()[:100],
        "last_name": (row.get("LAST_NAME") or "").strip()[:100],
        "age": _int(row, "AGE", low=0, high=130),
        "gender": (row.get("GENDER") or "").strip()[:20],
        "locale": (row.get("LOCALE") or "").strip()[:20],
        "unsubscribed": (row.get("UNSUBSCRIBED") or "").strip().lower() in ("1", "true", "yes"),
        "attributes": {k: v for k, v in row.items() if k and k not in known and v not in (None, "")},
    }


def parse_item(row: dict) -> dict:
    known = {
        "ITEM_ID", "TITLE", "YEAR", "GENRES", "PLOT", "IMDB_RATING", "IMDB_NUMBEROFVOTES", "US_MATURITY_RATING",
        "US_MATURITY_RATING_STRING", "PROMOTION", "CREATION_TIMESTAMP",
    }  # fmt: skip
    return {
        "external_id": _required(row, "ITEM_ID", 100),
        "title": _required(row, "TITLE", 300),
        "year": _int(row, "YEAR", low=1800, high=2200),
        "genres": [g.strip() for g in (row.get("GENRES") or "").split("|") if g.strip()],
        "plot": (row.get("PLOT") or "").strip(),
        "imdb_rating": _float(row, "IMDB_RATING"),
        "imdb_votes": _int(row, "IMDB_NUMBEROFVOTES", low=0),
        "maturity_rating": _int(row, "US_MATURITY_RATING", low=0, high=100),
        "maturity_rating_string": (row.get("US_MATURITY_RATING_STRING") or "").strip()[:20],
        "promotion": (row.get("PROMOTION") or "").strip().lower() in ("1", "true", "yes"),
        "creation_timestamp": _timestamp(row, "CREATION_TIMESTAMP", required=False),
        "metadata": {k: v for k, v in row.items() if k and k not in known and v not in (None, "")},
    }


def _read(path: Path, required: tuple[str, ...], report: ImportReport) -> Iterable[tuple[int, dict]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            report.errors.append((1, f"missing column(s) {', '.join(missing)}; the header must name {required}"))
            return
        for row in reader:
            report.rows += 1
            if None in row:
                report.errors.append((reader.line_num, "more fields than the header has columns"))
                continue
            yield reader.line_num, row


def _upsert(model, tenant, rows: list[dict], update_fields: list[str]) -> int:
    objs = [model(tenant=tenant, **row) for row in rows]
    model.objects.for_tenant(tenant).bulk_create(
        objs, update_conflicts=True, unique_fields=["tenant", "external_id"], update_fields=update_fields
    )
    return len(objs)


def _import_entities(path: Path, *, tenant, kind: str, required, parse: Callable, model) -> ImportReport:
    report = ImportReport(kind)
    batch: dict[str, dict] = {}  # keyed by external id: a later row in the same file wins
    fields = None
    for line, row in _read(path, required, report):
        try:
            parsed = parse(row)
        except RowError as exc:
            report.errors.append((line, str(exc)))
            continue
        fields = fields or [f for f in parsed if f != "external_id"]
        batch[parsed["external_id"]] = parsed
        if len(batch) >= BATCH:
            report.imported += _upsert(model, tenant, list(batch.values()), fields)
            batch = {}
    if batch:
        report.imported += _upsert(model, tenant, list(batch.values()), fields)
    return report


def import_users(path: Path, *, tenant) -> ImportReport:
    return _import_entities(path, tenant=tenant, kind="users", required=USER_COLUMNS, parse=parse_user, model=Contact)


def import_items(path: Path, *, tenant) -> ImportReport:
    return _import_entities(path, tenant=tenant, kind="items", required=ITEM_COLUMNS, parse=parse_item, model=Item)


def import_interactions(path: Path, *, tenant) -> ImportReport:
    report = ImportReport("interactions")
    contacts = dict(Contact.objects.for_tenant(tenant).values_list("external_id", "id"))
    items = dict(Item.objects.for_tenant(tenant).values_list("external_id", "id"))
    batch: list[Interaction] = []
    for line, row in _read(path, INTERACTION_COLUMNS, report):
        try:
            batch.append(_parse_interaction(row, tenant, contacts, items))
        except RowError as exc:
            report.errors.append((line, str(exc)))
            continue
        if len(batch) >= BATCH:
            report.imported += _insert_interactions(batch)
            batch = []
    report.imported += _insert_interactions(batch)
    return report


def _parse_interaction(row: dict, tenant, contacts: dict, items: dict) -> Interaction:
    user_id, item_id = _required(row, "USER_ID", 100), _required(row, "ITEM_ID", 100)
    if user_id not in contacts:
        raise RowError(f"unknown USER_ID {user_id!r}: import it in the users file first")
    if item_id not in items:
        raise RowError(f"unknown ITEM_ID {item_id!r}: import it in the items file first")
    return Interaction(
        tenant=tenant,
        contact_id=contacts[user_id],
        item_id=items[item_id],
        event_type=(row.get("EVENT_TYPE") or "").strip()[:50] or "watch",
        timestamp=_timestamp(row, "TIMESTAMP", required=True),
    )


def _insert_interactions(batch: list[Interaction]) -> int:
    if batch:
        Interaction.dangerously_unscoped.bulk_create(batch, ignore_conflicts=True)
    return len(batch)
