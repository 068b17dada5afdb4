"""CSV imports in Amazon Personalize's bulk formats. A bad row is reported with its line, its column and what to
fix; the good rows around it are imported. Re-importing is safe: rows are upserted, only the columns a file has
are written, a row already stored is reported as a duplicate, and an import never re-subscribes a contact."""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction

from datasets.consent import contacts_unsubscribe
from datasets.csvfile import FileProblem, check_file, detect_encoding, records
from datasets.models import ConsentSource, Contact, Interaction, Item, moment_problem

BATCH = 2000
PLOT_LIMIT = 20_000
INT_MAX = 2_147_483_647
MILLISECONDS = 1e11  # unix seconds this large are the year 5138: the file almost certainly holds milliseconds


class RowError(ValueError):
    pass


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # rejected: (line, reason); line 0 is the file
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # already stored, skipped: (line, which)
    notices: list[tuple[int, str]] = field(default_factory=list)  # landed, with something worth knowing

    def summary(self) -> str:
        text = f"{self.kind}: {self.rows} rows, {self.imported} imported, {len(self.errors)} rejected"
        return text + (f", {len(self.duplicates)} duplicates skipped" if self.duplicates else "")


@dataclass
class _Outcome:
    imported: int
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    notices: list[tuple[int, str]] = field(default_factory=list)


# --- one value ----------------------------------------------------------------------------------------------


def _text(limit: int, *, required: bool = False) -> Callable[[str, str], str]:
    def parse(column: str, raw: str) -> str:
        value = raw.strip()
        if required and not value:
            raise RowError(f"{column} is empty")
        if len(value) > limit:
            raise RowError(f"{column} is {len(value):,} characters long; at most {limit:,} are allowed: shorten it")
        return value

    return parse


def _email(column: str, raw: str) -> str:
    email = _text(254, required=True)(column, raw)
    try:
        validate_email(email)
    except ValidationError:
        raise RowError(f"{column} {email!r} is not a valid address") from None
    return email


def _whole(low: int, high: int) -> Callable[[str, str], int | None]:
    def parse(column: str, raw: str) -> int | None:
        raw = raw.strip()
        if not raw:
            return None
        try:
            value = int(raw)
        except ValueError:
            number = _number(column, raw)
            if not (math.isfinite(number) and number.is_integer()):
                raise RowError(f"{column} {raw!r} is not a whole number") from None
            value = int(number)
        if not low <= value <= high:
            raise RowError(f"{column} {value} is outside {low}..{high}")
        return value

    return parse


def _number(column: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise RowError(f"{column} {raw!r} is not a number") from None


def _rating(column: str, raw: str) -> float | None:
    raw = raw.strip()
    if not raw:
        return None
    value = _number(column, raw)
    if not math.isfinite(value):
        raise RowError(f"{column} {raw!r} is not a finite number")
    if not 0 <= value <= 10:
        raise RowError(f"{column} {value} is outside 0..10")
    return value


def _flag(column: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "y"):
        return True
    if value in ("", "0", "false", "no", "n"):
        return False
    raise RowError(f"{column} {raw!r} is neither true nor false: write true/false, yes/no or 1/0")


def _genres(column: str, raw: str) -> list[str]:
    genres = [g.strip() for g in raw.split("|") if g.strip()]
    if any(len(g) > 50 for g in genres) or len(genres) > 20:
        raise RowError(f"{column} has more than 20 genres or one longer than 50 characters")
    return genres


def _timestamp(column: str, raw: str) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    moment, shown = _moment(column, raw)
    if problem := moment_problem(moment):
        raise RowError(f"{column} {shown} is {moment:%Y-%m-%d}, {problem}: give unix seconds or an ISO 8601 date")
    return moment


def _moment(column: str, raw: str) -> tuple[datetime, str]:
    """The instant `raw` names, and how to show it in a message."""
    neither = RowError(f"{column} {raw!r} is neither unix seconds nor an ISO 8601 date")
    try:
        seconds = float(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise neither from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC), repr(raw)
    if not math.isfinite(seconds):
        raise neither
    if seconds >= MILLISECONDS:
        raise RowError(f"{column} {raw} is far in the future: it looks like milliseconds; give unix seconds")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC), raw
    except (OverflowError, OSError, ValueError):
        raise RowError(f"{column} {raw} is long before 1970: give unix seconds or an ISO 8601 date") from None


# --- the three kinds of file ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    model: type
    required: tuple[str, ...]
    columns: dict[str, tuple[str, Callable]]  # CSV column: (model field, parser)
    extras: str = ""  # the JSON field that keeps the columns we don't know

    @property
    def known(self) -> set[str]:
        return set(self.columns)


USERS = Kind(
    "users",
    Contact,
    ("USER_ID", "EMAIL"),
    {
        "USER_ID": ("external_id", _text(100, required=True)),
        "EMAIL": ("email", _email),
        "FIRST_NAME": ("first_name", _text(100)),
        "LAST_NAME": ("last_name", _text(100)),
        "AGE": ("age", _whole(0, 130)),
        "GENDER": ("gender", _text(20)),
        "LOCALE": ("locale", _text(20)),
        "UNSUBSCRIBED": ("unsubscribed", _flag),
    },
    extras="attributes",
)
ITEMS = Kind(
    "items",
    Item,
    ("ITEM_ID", "TITLE"),
    {
        "ITEM_ID": ("external_id", _text(100, required=True)),
        "TITLE": ("title", _text(300, required=True)),
        "YEAR": ("year", _whole(1800, 2200)),
        "GENRES": ("genres", _genres),
        "PLOT": ("plot", _text(PLOT_LIMIT)),
        "IMDB_RATING": ("imdb_rating", _rating),
        "IMDB_NUMBEROFVOTES": ("imdb_votes", _whole(0, INT_MAX)),
        "US_MATURITY_RATING": ("maturity_rating", _whole(0, 100)),
        "US_MATURITY_RATING_STRING": ("maturity_rating_string", _text(20)),
        "PROMOTION": ("promotion", _flag),
        "CREATION_TIMESTAMP": ("creation_timestamp", _timestamp),
    },
    extras="metadata",
)
INTERACTIONS = Kind(
    "interactions",
    Interaction,
    ("USER_ID", "ITEM_ID", "TIMESTAMP"),
    {
        "USER_ID": ("contact", _text(100, required=True)),
        "ITEM_ID": ("item", _text(100, required=True)),
        "TIMESTAMP": ("timestamp", _timestamp),
        "EVENT_TYPE": ("event_type", _text(50)),
    },
)


def _parse(kind: Kind, row: dict[str, str]) -> dict:
    """The model fields of the columns this file has; extra columns go to the kind's JSON field."""
    values = {kind.columns[c][0]: kind.columns[c][1](c, raw) for c, raw in row.items() if c in kind.columns}
    if kind.extras:
        values[kind.extras] = {c: raw.strip() for c, raw in row.items() if c and c not in kind.columns}
    return values


# --- reading --------------------------------------------------------------------------------------------------


def _rows(path: Path, kind: Kind, report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, {column: text}) for each readable row; everything else is reported."""
    try:
        check_file(path)
        encoding = detect_encoding(path)
    except FileProblem as exc:
        report.errors.append((0, str(exc)))
        return
    except OSError as exc:
        report.errors.append((0, f"cannot read the file: {exc.strerror or exc}"))
        return
    if encoding.notice:
        report.notices.append(encoding.notice)
    stream = records(path, encoding.name)
    columns = _header(next(stream, None), kind, report)
    if columns is None:
        return
    for record in stream:
        report.rows += 1
        try:
            yield record.line, _row(record, columns)
        except RowError as exc:
            report.errors.append((record.line, str(exc)))
    if not report.rows:
        report.errors.append((0, "no rows after the header: nothing to import"))


def _header(record, kind: Kind, report: ImportReport) -> list[str] | None:
    if record is None:
        report.errors.append((0, "the file has no header line"))
        return None
    if record.error:
        report.errors.append((record.line, f"the header: {record.error}"))
        return None
    columns = [c.strip().upper() if c.strip().upper() in kind.known else c.strip() for c in record.fields]
    twice = sorted({c for c in columns if c and columns.count(c) > 1})
    missing = [c for c in kind.required if c not in columns]
    if missing or twice:
        problem = f"missing column(s) {', '.join(missing)}" if missing else f"column(s) {', '.join(twice)} twice"
        report.errors.append((record.line, f"{problem}; the header must name {', '.join(kind.required)} once each"))
        return None
    return columns


def _row(record, columns: list[str]) -> dict[str, str]:
    if record.error:
        raise RowError(record.error)
    if len(record.fields) != len(columns):
        raise RowError(
            f"{len(record.fields)} fields, but the header has {len(columns)} columns: "
            "quote a field that contains a comma"
        )
    for column, value in zip(columns, record.fields, strict=True):
        if "\x00" in value:
            raise RowError(f"{column} contains a NUL byte (\\0) at character {value.index(chr(0)) + 1}: remove it")
    return dict(zip(columns, record.fields, strict=True))


# --- storing --------------------------------------------------------------------------------------------------


def _store(store: Callable[[list], _Outcome], rows: list[tuple[int, object]], report: ImportReport) -> None:
    """One statement per batch; should the database still refuse it, row by row so only the bad row is lost."""
    if not rows:
        return
    try:
        with transaction.atomic():
            outcomes = [store(rows)]
    except DatabaseError:
        outcomes = []
        for row in rows:
            try:
                with transaction.atomic():
                    outcomes.append(store([row]))
            except DatabaseError as exc:
                report.errors.append((row[0], f"the database refused this row: {str(exc).strip()}"))
    for outcome in outcomes:
        report.imported += outcome.imported
        report.duplicates += outcome.duplicates
        report.notices += outcome.notices
    report.duplicates.sort()
    report.notices.sort()


def _upsert(kind: Kind, tenant, rows: list[tuple[int, dict]]) -> None:
    """Insert new rows, update stored ones, in the columns the file has; extra columns are merged into the JSON
    field (a file without a column leaves what is stored there alone)."""
    values = [v for _, v in rows]
    fields = [f for f in values[0] if f not in ("external_id", "unsubscribed", kind.extras)]
    if kind.extras and values[0][kind.extras]:  # the file has columns we don't know
        fields.append(kind.extras)
        stored = dict(
            kind.model.objects.for_tenant(tenant)
            .filter(external_id__in=[v["external_id"] for v in values])
            .values_list("external_id", kind.extras)
        )
        for v in values:
            merged = {**stored.get(v["external_id"], {}), **v[kind.extras]}
            v[kind.extras] = {k: text for k, text in merged.items() if text not in (None, "")}
    objs = [kind.model(tenant=tenant, **{k: x for k, x in v.items() if k != "unsubscribed"}) for v in values]
    kind.model.objects.for_tenant(tenant).bulk_create(
        objs, update_conflicts=True, unique_fields=["tenant", "external_id"], update_fields=fields
    )


def _consent(tenant, rows: list[tuple[int, dict]], *, by: str, filename: str) -> list[tuple[int, str]]:
    """UNSUBSCRIBED=true unsubscribes on record; anything else never re-subscribes, and says so."""
    ids = dict(
        Contact.objects.for_tenant(tenant)
        .filter(external_id__in=[v["external_id"] for _, v in rows])
        .values_list("external_id", "pk")
    )
    wanted = {ids[v["external_id"]]: f"{filename} line {line}" for line, v in rows if v["unsubscribed"]}
    contacts_unsubscribe(tenant_id=tenant.pk, contact_ids=wanted, source=ConsentSource.IMPORT, by=by, notes=wanted)
    others = {v["external_id"]: line for line, v in rows if not v["unsubscribed"]}
    kept = Contact.objects.for_tenant(tenant).filter(external_id__in=others, unsubscribed=True)
    return [(others[ext], _stays_unsubscribed(ext)) for ext in kept.values_list("external_id", flat=True)]


def _stays_unsubscribed(external_id: str) -> str:
    return (
        f"USER_ID {external_id!r} stays unsubscribed: an import never re-subscribes a contact; "
        f"POST /api/v1/contacts/{external_id}/resubscribe/ with the contact's consent does"
    )


def _import_entities(path: Path, *, tenant, kind: Kind, by: str) -> ImportReport:
    report = ImportReport(kind.name)
    by = by or f"import:{path.name}"

    def store(rows: list[tuple[int, dict]]) -> _Outcome:
        _upsert(kind, tenant, rows)
        consent = kind is USERS and "unsubscribed" in rows[0][1]
        notices = _consent(tenant, rows, by=by, filename=path.name) if consent else []
        return _Outcome(len(rows), notices=notices)

    batch: dict[str, tuple[int, dict]] = {}  # keyed by external id: a later row in the same file wins
    for line, row in _rows(path, kind, report):
        try:
            parsed = _parse(kind, row)
        except RowError as exc:
            report.errors.append((line, str(exc)))
            continue
        batch[parsed["external_id"]] = (line, parsed)
        if len(batch) >= BATCH:
            _store(store, list(batch.values()), report)
            batch = {}
    _store(store, list(batch.values()), report)
    return report


def import_users(path: Path, *, tenant, by: str = "") -> ImportReport:
    """`by` names who imports, for the consent record (default: the file's name)."""
    return _import_entities(path, tenant=tenant, kind=USERS, by=by)


def import_items(path: Path, *, tenant, by: str = "") -> ImportReport:
    return _import_entities(path, tenant=tenant, kind=ITEMS, by=by)


def import_interactions(path: Path, *, tenant, by: str = "") -> ImportReport:
    report = ImportReport("interactions")
    contacts = dict(Contact.objects.for_tenant(tenant).values_list("external_id", "id"))
    items = dict(Item.objects.for_tenant(tenant).values_list("external_id", "id"))
    batch: list[tuple[int, Interaction]] = []
    for line, row in _rows(path, INTERACTIONS, report):
        try:
            batch.append((line, _interaction(_parse(INTERACTIONS, row), tenant, contacts, items)))
        except RowError as exc:
            report.errors.append((line, str(exc)))
            continue
        if len(batch) >= BATCH:
            _store(lambda rows: _insert_interactions(tenant, rows), batch, report)
            batch = []
    _store(lambda rows: _insert_interactions(tenant, rows), batch, report)
    return report


def _interaction(values: dict, tenant, contacts: dict, items: dict) -> Interaction:
    user_id, item_id = values["contact"], values["item"]
    if user_id not in contacts:
        raise RowError(f"unknown USER_ID {user_id!r}: import it in the users file first")
    if item_id not in items:
        raise RowError(f"unknown ITEM_ID {item_id!r}: import it in the items file first")
    if values["timestamp"] is None:
        raise RowError("TIMESTAMP is empty")
    return Interaction(
        tenant=tenant,
        contact_id=contacts[user_id],
        item_id=items[item_id],
        event_type=values.get("event_type") or "watch",
        timestamp=values["timestamp"],
    )


def _key(interaction: Interaction) -> tuple:
    return interaction.contact_id, interaction.item_id, interaction.event_type, interaction.timestamp


def _insert_interactions(tenant, rows: list[tuple[int, Interaction]]) -> _Outcome:
    """New events only; one already stored, or twice in the batch, is reported as a duplicate with its line."""
    first_line: dict[tuple, int] = {}
    duplicates = []
    for line, interaction in rows:
        if _key(interaction) in first_line:
            duplicates.append((line, f"duplicate of line {first_line[_key(interaction)]} in this file: skipped"))
        else:
            first_line[_key(interaction)] = line
    moments = [key[3] for key in first_line]
    stored = set(
        Interaction.objects.for_tenant(tenant)
        .filter(contact_id__in={key[0] for key in first_line}, timestamp__range=(min(moments), max(moments)))
        .values_list("contact_id", "item_id", "event_type", "timestamp")
    )
    duplicates += [(line, "already stored: skipped") for key, line in first_line.items() if key in stored]
    fresh = [i for line, i in rows if first_line.get(_key(i)) == line and _key(i) not in stored]
    # ignore_conflicts: an import running at the same time may have stored the same event a moment ago
    Interaction.objects.for_tenant(tenant).bulk_create(fresh, ignore_conflicts=True)
    return _Outcome(len(fresh), duplicates=duplicates)
