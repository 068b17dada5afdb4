"""A contact's favorite genre from their viewing history, with recent viewing counting for more.

Each interaction gives its full (decayed) weight to every genre of its item rather than splitting it: a
film listed as "Action|Sci-Fi" is wholly an action film and wholly a sci-fi film to the person watching
it. Splitting would favour genres that are usually listed alone (Documentary, Drama) over genres that
usually come in combinations, which says more about how catalogs label films than about the viewer.
"""

from collections.abc import Iterable, Sequence

DAY = 86_400.0


def genre_scores(
    history: Iterable[tuple[Sequence[str], float, float]], *, now: float, half_life_days: float = 90.0
) -> dict[str, float]:
    """Sum of weight × 0.5 ** (age_days / half_life_days) per genre, for (genres, timestamp, weight) entries.

    Events dated after `now` count as fresh (age 0), so a clock skew never inflates them. A half-life of
    0 or None turns decay off.
    """
    scores: dict[str, float] = {}
    for genres, timestamp, weight in history:
        decay = 0.5 ** (max(now - timestamp, 0.0) / DAY / half_life_days) if half_life_days else 1.0
        if isinstance(genres, str):  # the GENRES column as stored, "Action|Sci-Fi"
            genres = genres.split("|")
        for genre in dict.fromkeys(g.strip() for g in genres):
            if genre:
                scores[genre] = scores.get(genre, 0.0) + weight * decay
    return scores


def favorite_genre(
    history: Iterable[tuple[Sequence[str], float, float]], *, now: float, half_life_days: float = 90.0
) -> str | None:
    """The genre with the highest decayed score; ties go to the alphabetically first. None without history."""
    scores = genre_scores(history, now=now, half_life_days=half_life_days)
    # Rounded so that sums which differ only by float error (summation order) still count as a tie.
    ranked = sorted((-round(score, 9), genre) for genre, score in scores.items() if score > 0)
    return ranked[0][1] if ranked else None
