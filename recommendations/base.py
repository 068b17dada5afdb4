"""What every recommender gives the campaign pipeline: top picks per contact, with item metadata, and the
options a campaign can put on them (Personalize-style filters and promotions)."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Pick:
    external_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    plot: str
    score: float

    def as_prompt_item(self) -> dict:
        return {
            "id": self.external_id,
            "title": self.title,
            "year": self.year,
            "genres": list(self.genres),
            "plot": self.plot,
        }


@dataclass(frozen=True)
class RecommendationOptions:
    """Filters and promotions for one batch of top picks; the defaults change nothing.

    Genres match case-insensitively. Maturity uses the catalog's US_MATURITY_RATING scale (1 G, 2 PG,
    3 PG-13, 4 R); unrated items pass a ceiling, so a catalog without ratings is not emptied by one.
    """

    include_genres: tuple[str, ...] = ()  # only items with at least one of these genres
    exclude_genres: tuple[str, ...] = ()  # no item with any of these genres
    max_maturity: int | None = None  # no item rated above this, for every contact
    maturity_by_age: bool = False  # also cap each contact by their age (under 13: PG, under 17: PG-13)
    # contact pk -> item external ids they must not get, e.g. the items emailed to them in the last N days
    exclude_items: Mapping[int, Collection[str]] = field(default_factory=dict)
    promotion_share: float = 0.0  # share of the slots for promoted items (Item.promotion); at least one if > 0

    def __post_init__(self):
        if not 0.0 <= self.promotion_share <= 1.0:
            raise ValueError("promotion_share must be between 0 and 1")

    def promoted_slots(self, n: int) -> int:
        return max(1, round(self.promotion_share * n)) if self.promotion_share > 0 and n > 0 else 0


class Recommender(Protocol):
    def top_picks(self, contacts: list, n: int, options: RecommendationOptions | None = None) -> dict[int, list[Pick]]:
        """contact pk → up to n items the contact has not interacted with, best first."""
