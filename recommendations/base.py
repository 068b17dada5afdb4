"""What every recommender gives the campaign pipeline: top picks per contact, with item metadata."""

from dataclasses import dataclass
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


class Recommender(Protocol):
    def top_picks(self, contacts: list, n: int) -> dict[int, list[Pick]]:
        """contact pk → up to n items the contact has not interacted with, best first."""
