"""Bulk writes through the API, one way for every endpoint: each row checked on its own by one bound serializer (no
query per row), the good rows written together, and each bad row answered by its index with what is wrong."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import DatabaseError, transaction
from rest_framework import serializers
from rest_framework.serializers import as_serializer_error

NOT_OBJECT = "each row must be an object"


@dataclass
class RowProblem:
    index: int
    fields: dict  # DRF's messages by field, `non_field_errors` for the row as a whole
    external_id: str | None = None

    def text(self) -> str:
        """The messages on one line, for answers that report a row as text."""
        return "; ".join(f"{name}: {' '.join(map(str, why))}" for name, why in self.fields.items())

    def as_dict(self) -> dict:
        return {"index": self.index, "external_id": self.external_id, "fields": _plain(self.fields)}


@dataclass
class Checked:
    good: list[tuple[int, dict]] = field(default_factory=list)  # (index, validated data)
    bad: list[RowProblem] = field(default_factory=list)


def rows_check(serializer: serializers.Serializer, rows: Sequence, *, not_object: str = NOT_OBJECT) -> Checked:
    """Validate every row with the one serializer given (fields bound once, as DRF's ListSerializer does), keeping
    the good rows and each bad one's messages; a row that is not an object says `not_object`."""
    checked = Checked()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            checked.bad.append(RowProblem(index, {"non_field_errors": [not_object]}))
            continue
        try:
            checked.good.append((index, serializer.run_validation(row)))
        except serializers.ValidationError as exc:
            external_id = row.get("external_id")
            checked.bad.append(RowProblem(index, as_serializer_error(exc), _text_or_none(external_id)))
    return checked


def rows_write(write: Callable[[list], None], rows: list[tuple[int, object]], *, chunk: int = 1000) -> list[RowProblem]:
    """`write` each chunk of (index, row) in one transaction; a chunk the database still refuses is written again
    row by row, so only the row it refuses is lost (and answered with what the database said). With `chunk=1`
    each row is its own transaction and a refused row is not tried again. `write` keeps what it learns of a chunk
    only once the chunk has gone through: a refused chunk's work is undone."""
    refused = []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        try:
            with transaction.atomic():
                write(part)
        except DatabaseError as exc:
            if len(part) == 1:
                refused.append(_refused(part[0][0], exc))
                continue
            for index, row in part:
                try:
                    with transaction.atomic():
                        write([(index, row)])
                except DatabaseError as exc:
                    refused.append(_refused(index, exc))
    return refused


def _refused(index: int, exc: DatabaseError) -> RowProblem:
    said = f"the database refused this row: {str(exc).strip().splitlines()[0]}"
    return RowProblem(index, {"non_field_errors": [said]})


def _text_or_none(value) -> str | None:
    return value[:100] if isinstance(value, str) else None


def _plain(detail):
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        return [_plain(value) for value in detail]
    return str(detail)
