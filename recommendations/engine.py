"""The embedded recommender: "top picks for you" from implicit feedback, trained and served in numpy/scipy.

A user's history (each item weighted by its event type, and by how recently the user had it) is scored against
three item signals (co-watch, watched next, genre taste; see scoring.py) and the blend is ranked, the user's own
items left out. Settings a tenant does not fix are chosen at every training on a held-out slice of its own data
(see tuning.py). Users without history get recent popularity. The caller owns storage and ids.
"""

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.sparse as sp

from recommendations.scoring import Ease, Events, History, Signals, genre_matrix, interest, next_items, popularity
from recommendations.tuning import EaseOptions, tune

FORMAT_VERSION = 2
SCORE_BATCH = 1024  # users scored per matrix product; bounds memory to batch x items
FILL = 1e-6  # weight of popularity in a blend: it only orders the items that no signal reaches
# Tried against equal weights when a tenant sets none: a watch says more than a click, unless the data disagree.
WATCH_OVER_CLICK = {"watch": 1.0, "click": 0.5}
TUNED = ("l2", "history_half_life", "next_weight", "genre_weight")


class EngineFormatError(ValueError):
    """A stored engine from another version of this code: retrain it."""


@dataclass(frozen=True)
class EngineParams:
    # None: chosen at training between WATCH_OVER_CLICK and equal weights, by the held-out slice.
    event_weights: dict[str, float] | None = None
    default_event_weight: float = 1.0  # for event types not in event_weights
    half_life_days: float | None = 120.0  # recency of popularity (cold start); 0 or None disables it
    # None: chosen at training by the held-out slice (see tuning.CHOICES).
    l2: float | None = None  # EASE regularisation
    history_half_life: float | None = None  # in items: the user's item this many items back counts half
    next_weight: float | None = None  # weight of "watched next" against co-watch
    genre_weight: float | None = None  # weight of genre taste against co-watch
    neighbours: int = 300  # weights kept per item (EASE sources, next items)
    min_support: int = 2  # items with fewer users stay out of EASE (the other signals still reach them)
    max_ease_items: int = 2500  # EASE covers at most this many of the most-watched items


class Engine:
    """A trained model: who saw what, the three item signals, and recent popularity."""

    def __init__(
        self,
        *,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        history: History,
        ease: sp.csr_matrix,
        next_weights: sp.csr_matrix,
        genres: sp.csr_matrix,
        interest: np.ndarray,
        popularity: np.ndarray,
        params: EngineParams,
        n_interactions: int,
    ):
        self.user_ids, self.item_ids = list(user_ids), list(item_ids)
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {it: i for i, it in enumerate(self.item_ids)}
        self.history, self.ease, self.next_weights, self.genres = history, ease, next_weights, genres
        self.interest, self.popularity = interest, popularity
        self.signals = Signals(lambda weights: weights @ ease, next_weights, genres, interest)
        self.params, self.n_interactions = params, n_interactions

    def recommend(
        self,
        user_id: str,
        n: int,
        *,
        allowed: np.ndarray | None = None,
        exclude_item_ids: Iterable[str] = (),
        promoted: np.ndarray | None = None,
        promoted_slots: int = 0,
        preferred: np.ndarray | None = None,
    ) -> list[tuple[str, float]]:
        """Top-n unseen items for one user, best first; the options as in `recommend_many`."""
        return self.recommend_many(
            [user_id], n, allowed=allowed, exclude={user_id: exclude_item_ids}, promoted=promoted,
            promoted_slots=promoted_slots, preferred=None if preferred is None else {user_id: preferred},
        )[user_id]  # fmt: skip

    def recommend_many(
        self,
        user_ids: Sequence[str],
        n: int,
        *,
        allowed: np.ndarray | None = None,
        exclude: Mapping[str, Iterable[str]] | None = None,
        promoted: np.ndarray | None = None,
        promoted_slots: int = 0,
        preferred: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, list[tuple[str, float]]]:
        """Top-n unseen items per user, best first, scored in batches; unknown users get recent popularity.

        `allowed`, `promoted` and the values of `preferred` are boolean masks over `item_ids`. `exclude` maps a
        user to item ids they must not get (unknown ids are ignored). Up to `promoted_slots` of the n places go
        to the user's best promoted items, placed among the others by score. A user without history gets
        their `preferred` items first, each group by popularity.
        """
        allowed, promoted = self._mask(allowed), self._mask(promoted)
        exclude, preferred = exclude or {}, preferred or {}
        result = {}
        known = [u for u in dict.fromkeys(user_ids) if u in self.user_index]
        for start in range(0, len(known), SCORE_BATCH):
            batch = known[start : start + SCORE_BATCH]
            rows = [self.user_index[u] for u in batch]
            for user, row, scores in zip(batch, rows, self._scores(rows), strict=True):
                blocked = self._blocked(row, allowed, exclude.get(user, ()))
                result[user] = self._rank(scores, blocked, n, promoted, promoted_slots)
        for user in dict.fromkeys(u for u in user_ids if u not in self.user_index):
            scores = self._popularity_scores(self._mask(preferred.get(user)))
            blocked = self._blocked(None, allowed, exclude.get(user, ()))
            result[user] = self._rank(scores, blocked, n, promoted, promoted_slots)
        return result

    def popular(self, n: int, *, allowed: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Items ranked by recency-weighted number of users."""
        blocked = self._blocked(None, self._mask(allowed), ())
        return self._rank(self._popularity_scores(None), blocked, n, None, 0)

    def to_bytes(self) -> bytes:
        """Serialise with numpy's npz format (no pickle, so loading a stored model cannot run code)."""
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            "params": np.array(json.dumps(asdict(self.params))),
            "n_interactions": np.array(self.n_interactions),
            "user_ids": np.array(self.user_ids, dtype=str),
            "item_ids": np.array(self.item_ids, dtype=str),
            "popularity": self.popularity,
            "interest": self.interest,
        }
        matrices = {"strength": self.history.strength, "age": self.history.age, "ease": self.ease}
        for name, matrix in (matrices | {"next_weights": self.next_weights, "genres": self.genres}).items():
            arrays |= _sparse_arrays(name, matrix)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Engine":
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            if int(f["format_version"]) != FORMAT_VERSION:
                raise EngineFormatError(f"engine format {int(f['format_version'])}, expected {FORMAT_VERSION}")
            return cls(
                user_ids=f["user_ids"].tolist(),
                item_ids=f["item_ids"].tolist(),
                history=History(_sparse_from(f, "strength"), _sparse_from(f, "age")),
                **{name: _sparse_from(f, name) for name in ("ease", "next_weights", "genres")},
                interest=f["interest"],
                popularity=f["popularity"],
                params=EngineParams(**json.loads(str(f["params"]))),
                n_interactions=int(f["n_interactions"]),
            )

    def _scores(self, rows: list[int]) -> np.ndarray:
        p = self.params
        scores = self.signals.blend(
            self.history.rows(rows), half_life=p.history_half_life, next_weight=p.next_weight,
            genre_weight=p.genre_weight,
        )  # fmt: skip
        return scores + FILL * self.popularity / max(self.popularity.max(), 1e-12)

    def _popularity_scores(self, preferred: np.ndarray | None) -> np.ndarray:
        scores = self.popularity.astype(np.float64)
        if preferred is not None:  # every preferred item ahead of every other one
            scores = scores + preferred * (scores.max() + 1.0)
        return scores

    def _mask(self, mask: np.ndarray | None) -> np.ndarray | None:
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(self.item_ids),):
            raise ValueError(f"item masks must be boolean arrays of length {len(self.item_ids)}")
        return mask

    def _blocked(self, row: int | None, allowed: np.ndarray | None, excluded: Iterable[str]) -> np.ndarray:
        blocked = np.zeros(len(self.item_ids), dtype=bool) if allowed is None else ~allowed
        if row is not None:
            blocked[self.history.seen(row)] = True
        blocked[[self.item_index[i] for i in excluded if i in self.item_index]] = True
        return blocked

    def _rank(
        self, scores: np.ndarray, blocked: np.ndarray, n: int, promoted: np.ndarray | None, promoted_slots: int
    ) -> list[tuple[str, float]]:
        scores = np.where(blocked, -np.inf, scores.astype(np.float64))
        chosen = _top_n(scores, n)
        if promoted is not None and promoted_slots > 0:
            reserved = _top_n(np.where(promoted, scores, -np.inf), min(promoted_slots, n))
            regular = _top_n(np.where(promoted, -np.inf, scores), n - len(reserved))
            picked = np.concatenate([reserved, regular])
            chosen = picked[np.lexsort((picked, -scores[picked]))]
        return [(self.item_ids[i], float(scores[i])) for i in chosen]


def train(
    user_ids: Sequence[str],
    item_ids: Sequence[str],
    timestamps: Sequence[float],
    event_types: Sequence[str],
    *,
    item_genres: Mapping[str, Sequence[str] | str] | None = None,
    params: EngineParams = EngineParams(),  # noqa: B008  (frozen, so sharing the default is safe)
) -> Engine:
    """Fit the model on parallel columns of interactions (one row per event), choosing what params leave open.

    `item_genres` maps the catalog's item ids to their genres (a list, or "A|B"). Catalog items nobody has
    interacted with yet are part of the model too: filters and promotions can reach them, and otherwise they
    come after every item with some evidence.
    """
    _check(user_ids, item_ids, timestamps, event_types, params)
    events = Events.build(user_ids, item_ids, timestamps, event_types, catalog=(item_genres or {}).keys())
    genres = genre_matrix(events.items, item_genres or {})
    events, params = _choose(events, genres, params)
    log = events.collapse()
    ease = Ease(log, l2=params.l2, min_support=params.min_support, max_items=params.max_ease_items)
    return Engine(
        user_ids=log.users.tolist(),
        item_ids=log.items.tolist(),
        history=log.histories(),
        ease=ease.weights(params.neighbours),
        next_weights=next_items(log, params.neighbours),
        genres=genres,
        interest=interest(log),
        popularity=popularity(log, params.half_life_days),
        params=params,
        n_interactions=len(user_ids),
    )


def _check(user_ids, item_ids, timestamps, event_types, params: EngineParams) -> None:
    n = len(user_ids)
    if n == 0:
        raise ValueError("cannot train a recommender without interactions")
    if not len(item_ids) == len(timestamps) == len(event_types) == n:
        raise ValueError("user_ids, item_ids, timestamps and event_types must have the same length")
    if not all(getattr(params, name) is None or getattr(params, name) >= 0 for name in TUNED):
        raise ValueError(f"{', '.join(TUNED)} must not be negative")
    if params.l2 == 0 or params.history_half_life == 0 or (params.half_life_days or 0) < 0:
        raise ValueError("l2 and history_half_life must be positive, half_life_days must not be negative")
    if params.neighbours < 1 or params.max_ease_items < 1:
        raise ValueError("neighbours and max_ease_items must be positive")


def _choose(events: Events, genres: sp.csr_matrix, params: EngineParams) -> tuple[Events, EngineParams]:
    """The event weighting and settings that params leave open, by the held-out slice; the first wins ties."""
    fixed = {name: getattr(params, name) for name in TUNED if getattr(params, name) is not None}
    options = EaseOptions(params.neighbours, params.min_support, params.max_ease_items)
    first, *others = [params.event_weights] if params.event_weights is not None else [WATCH_OVER_CLICK, {}]
    chosen = events.weighted(first, params.default_event_weight)
    if len(fixed) == len(TUNED) and not others:
        return chosen, replace(params, event_weights=first)
    settings, best = tune(chosen, genres, fixed, options=options)
    for weights in others:  # at the settings found for the first: a search of its own would double the time
        candidate = events.weighted(weights, params.default_event_weight)
        if np.array_equal(candidate.strength, chosen.strength):
            continue  # no event type in this data that the weighting changes
        score = tune(candidate, genres, settings, options=options)[1]
        if score > best + 1e-9:
            chosen, first, best = candidate, weights, score
    return chosen, replace(params, event_weights=first, **settings)


def _top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n best finite scores, best first; ties go to the lower index (item ids are sorted)."""
    candidates = np.flatnonzero(np.isfinite(scores))
    if n <= 0 or candidates.size == 0:
        return candidates[:0]
    if candidates.size > n:
        nth_best = np.partition(scores[candidates], candidates.size - n)[candidates.size - n]
        candidates = candidates[scores[candidates] >= nth_best]
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:n]]


def _sparse_arrays(name: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    matrix = sp.csr_matrix(matrix)
    return {
        f"{name}_data": matrix.data,
        f"{name}_indices": matrix.indices,
        f"{name}_indptr": matrix.indptr,
        f"{name}_shape": np.array(matrix.shape),
    }


def _sparse_from(f, name: str) -> sp.csr_matrix:
    parts = (f[f"{name}_data"], f[f"{name}_indices"], f[f"{name}_indptr"])
    return sp.csr_matrix(parts, shape=tuple(f[f"{name}_shape"]))
