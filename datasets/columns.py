"""The columns of Amazon Personalize's users, items and interactions files: what each may hold, parsed into our
models' fields, with a message naming the column and what to fix when a value cannot be right."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from datasets.models import Contact, Interaction, Item, Suppression, SuppressionReason, moment_problem

PLOT_LIMIT = 20_000
INT_MAX = 2_147_483_647
MILLISECONDS = 1e11  # unix seconds this large are the year 5138: the file almost certainly holds milliseconds


class RowError(ValueError):
    pass


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
        try:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC), repr(raw)
        except OverflowError:  # year 1 or 9999 and an offset that would leave the calendar
            when = "before 1970" if parsed.year < 1970 else "in the future"
            raise RowError(f"{column} {raw!r} is {when}: give unix seconds or an ISO 8601 date") from None
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


# A suppression file from another platform: why each address is there; blank is "imported". A hand-added reason
# is for people in the admin, not for files.
IMPORTED_REASONS = (SuppressionReason.IMPORTED, SuppressionReason.UNSUBSCRIBED, SuppressionReason.HARD_BOUNCE,
                    SuppressionReason.COMPLAINT)  # fmt: skip


def _reason(column: str, raw: str) -> str:
    value = raw.strip().lower().replace(" ", "_").replace("-", "_")
    if not value:
        return SuppressionReason.IMPORTED
    if value not in IMPORTED_REASONS:
        raise RowError(f"{column} {raw.strip()[:40]!r} is not one of {', '.join(IMPORTED_REASONS)} (blank: imported)")
    return value


SUPPRESSIONS = Kind(
    "suppressions",
    Suppression,
    ("EMAIL",),
    {"EMAIL": ("address", _email), "REASON": ("reason", _reason), "NOTE": ("note", _text(1000))},
)


def parse_row(kind: Kind, row: dict[str, str]) -> dict:
    """The model fields of the columns this file has; extra columns go to the kind's JSON field."""
    values = {kind.columns[c][0]: kind.columns[c][1](c, raw) for c, raw in row.items() if c in kind.columns}
    if kind.extras:
        values[kind.extras] = {c: raw.strip() for c, raw in row.items() if c and c not in kind.columns}
    return values
