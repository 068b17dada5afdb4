"""CSV imports in Amazon Personalize's bulk formats. A bad row is reported with its line, its column and what to
fix; the good rows around it are imported. Re-importing is safe: rows are upserted, only the columns a file has
are written, a row already stored is reported as a duplicate, and an import never re-subscribes a contact."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError, transaction

from datasets.columns import INTERACTIONS, ITEMS, SUPPRESSIONS, USERS, Kind, RowError, parse_row
from datasets.consent import contacts_unsubscribe
from datasets.csvfile import FileProblem, check_file, detect_encoding, records
from datasets.models import ConsentSource, Contact, Interaction, Item, Suppression, SuppressionReason

BATCH = 2000


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
    for outcome in outcomes:  # batches come in file order; within one, sort by line
        report.imported += outcome.imported
        report.duplicates += sorted(outcome.duplicates)
        report.notices += sorted(outcome.notices)


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
    if any(field.name == "updated_at" for field in kind.model._meta.fields):
        fields.append("updated_at")  # auto_now sets it on insert; a row updated on conflict needs it named
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
            parsed = parse_row(kind, row)
        except RowError as exc:
            report.errors.append((line, str(exc)))
            continue
        if earlier := batch.get(parsed["external_id"]):
            said = f"{kind.required[0]} {parsed['external_id']!r} is also on line {earlier[0]}: this later row wins"
            report.notices.append((line, said))
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
            batch.append((line, _interaction(parse_row(INTERACTIONS, row), tenant, contacts, items)))
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


# --- the suppression list ---------------------------------------------------------------------------------------


def import_suppressions(path: Path, *, tenant, by: str = "") -> ImportReport:
    """EMAIL[,REASON,NOTE]: addresses the tenant must never email, from another platform's export or a list of its
    own. An address already on the list keeps its row (a hard bounce or complaint in the file replaces an
    unsubscribe: the stronger reason); it is reported as skipped with the reason it has."""
    report = ImportReport("suppressions")
    by = by or f"import:{path.name}"
    batch: dict[str, tuple[int, dict]] = {}  # by lower-cased address: a later row in the same file wins
    for line, row in _rows(path, SUPPRESSIONS, report):
        try:
            parsed = parse_row(SUPPRESSIONS, row)
        except RowError as exc:
            report.errors.append((line, str(exc)))
            continue
        parsed["address"] = parsed["address"].lower()
        parsed.setdefault("reason", SuppressionReason.IMPORTED)
        if earlier := batch.get(parsed["address"]):
            report.notices.append(
                (line, f"EMAIL {parsed['address']!r} is also on line {earlier[0]}: this later row wins")
            )
        batch[parsed["address"]] = (line, parsed)
        if len(batch) >= BATCH:
            _store(lambda rows: _suppress(tenant, rows, by=by), list(batch.values()), report)
            batch = {}
    _store(lambda rows: _suppress(tenant, rows, by=by), list(batch.values()), report)
    return report


def _suppress(tenant, rows: list[tuple[int, dict]], *, by: str) -> _Outcome:
    listed = Suppression.objects.for_tenant(tenant)
    wanted = {v["address"]: (line, v) for line, v in rows}
    stored = dict(listed.filter(address__in=list(wanted)).values_list("address", "reason"))
    duplicates = []
    for address, was in stored.items():
        line, v = wanted[address]
        said = f"{address} is already on the list ({was.replace('_', ' ')})"
        if was == SuppressionReason.UNSUBSCRIBED and v["reason"] in (SuppressionReason.HARD_BOUNCE,
                                                                     SuppressionReason.COMPLAINT):  # fmt: skip
            listed.filter(address=address).update(reason=v["reason"], source="import", actor=by[:200])
            said += f"; now a {v['reason'].replace('_', ' ')}, the stronger reason"
        duplicates.append((line, said))
    fresh = [Suppression(tenant=tenant, address=address, reason=v["reason"], source="import", actor=by[:200],
                         note=v.get("note", "")) for address, (_, v) in wanted.items() if address not in stored]  # fmt: skip
    # ignore_conflicts: an unsubscribe or a bounce may have listed one of them a moment ago
    listed.bulk_create(fresh, ignore_conflicts=True)
    return _Outcome(len(fresh), duplicates=duplicates)
