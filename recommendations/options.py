"""Turning a campaign's RecommendationOptions into item masks over a trained engine's catalog.

Pure numpy: the caller loads what the filters need about each item into a Catalog aligned with the engine's
item ids.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from recommendations.base import RecommendationOptions

# The maturity ceiling for a contact's age, youngest first: (below this age, highest rating allowed).
MATURITY_BY_AGE = ((13, 2), (17, 3))  # PG under 13, PG-13 under 17
PREFERENCE_KEYS = ("genres", "favorite_genres", "preferred_genres")  # contact attributes that state tastes


@dataclass(frozen=True)
class Catalog:
    """What the filters need about each item, aligned with Engine.item_ids."""

    item_by_external: dict[str, str]  # external id -> engine item id
    exists: np.ndarray  # False for items deleted since training
    genres: list[frozenset[str]]  # lower-cased
    maturity: np.ndarray  # NaN when unrated
    promoted: np.ndarray

    @classmethod
    def build(cls, item_ids: list[str], rows: Mapping[str, tuple]) -> "Catalog":
        """`rows` maps an engine item id to (external_id, genres, maturity_rating, promotion)."""
        found = [rows.get(item_id) for item_id in item_ids]
        return cls(
            item_by_external={row[0]: item_id for item_id, row in zip(item_ids, found, strict=True) if row},
            exists=np.array([row is not None for row in found], dtype=bool),
            genres=[frozenset(g.lower() for g in (row[1] or ())) if row else frozenset() for row in found],
            maturity=np.array([np.nan if not row or row[2] is None else row[2] for row in found], dtype=float),
            promoted=np.array([bool(row and row[3]) for row in found], dtype=bool),
        )

    def with_genres(self, genres: Iterable[str]) -> np.ndarray:
        wanted = {g.lower() for g in genres}
        return np.array([bool(item & wanted) for item in self.genres], dtype=bool)

    def allowed(self, options: RecommendationOptions, ceiling: int | None) -> np.ndarray:
        allowed = self.exists.copy()
        if options.include_genres:
            allowed &= self.with_genres(options.include_genres)
        if options.exclude_genres:
            allowed &= ~self.with_genres(options.exclude_genres)
        if ceiling is not None:
            allowed &= ~(self.maturity > ceiling)  # NaN (unrated) compares False, so it passes
        return allowed

    def engine_ids(self, external_ids: Iterable[str]) -> list[str]:
        return [self.item_by_external[e] for e in external_ids if e in self.item_by_external]


def maturity_ceiling(options: RecommendationOptions, age: int | None) -> int | None:
    """The lower of the campaign's ceiling and, when asked for, the one for the contact's age."""
    ceilings = [options.max_maturity] if options.max_maturity is not None else []
    if options.maturity_by_age and age is not None:
        ceilings += [level for below, level in MATURITY_BY_AGE if age < below][:1]
    return min(ceilings) if ceilings else None


def stated_genres(attributes: Mapping) -> list[str]:
    """Genres a contact said they like, from their imported attributes ("A|B" or a list), if any."""
    for key, value in attributes.items():
        if key.lower() in PREFERENCE_KEYS and value:
            values = value.split("|") if isinstance(value, str) else value
            return [str(v).strip() for v in values if str(v).strip()]
    return []
