"""The embedded recommender's data and signals: interactions as sparse matrices, and the three item signals.

- co-watch: EASE (a closed-form ridge regression of every item on all the others), solved on the smaller side
  of the data (items, or users through the Woodbury identity) and kept as each item's strongest weights;
- watched next: where people went from an item within the next few items of their history;
- genre taste: the user's recent genre mix times each item's rate of interest since it first appeared, which
  lets a new release compete with old favourites.

Each signal is scaled to the user's best item before blending, so the blend weights mean the same for every
tenant. Plain numpy/scipy.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

WEIGHT_BLOCK = 512  # items per block while the EASE weights are thinned to their strongest entries
NEXT_WINDOW = 30  # "watched next" looks this many items ahead in a history ...
NEXT_DECAY = 10.0  # ... and an item this many steps later counts half as much as the very next one
TASTE_HALF_LIFE = 5.0  # genre taste follows the last few items: it moves faster than what goes with what
MIN_DECAY = 1e-4  # history items weighing less than this (after recency) are left out of the scores
MIN_EXPOSURE_DAYS = 30.0  # an item's interest rate is never computed over less than this
DAY = 86_400.0


@dataclass(frozen=True)
class Events:
    """Interactions as index arrays, sorted by user, then time, then input order."""

    users: np.ndarray
    items: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    times: np.ndarray
    kinds: np.ndarray  # index into kind_names: the event type
    kind_names: np.ndarray
    strength: np.ndarray

    @classmethod
    def build(cls, user_ids, item_ids, timestamps, event_types, catalog: Iterable[str] = ()) -> "Events":
        """`catalog` adds items nobody has interacted with yet, so that they can still be recommended."""
        users, rows = np.unique(np.asarray(user_ids, dtype=str), return_inverse=True)
        item_ids = np.asarray(item_ids, dtype=str)
        items = np.unique(np.concatenate([item_ids, np.asarray(list(catalog), dtype=str)]))
        cols = np.searchsorted(items, item_ids)
        kind_names, kinds = np.unique(np.asarray(event_types, dtype=str), return_inverse=True)
        times = np.asarray(timestamps, dtype=np.float64)
        order = np.lexsort((np.arange(len(rows)), times, rows))
        strength = np.ones(len(rows))
        return cls(users, items, rows[order], cols[order], times[order], kinds[order], kind_names, strength)

    def weighted(self, weights: Mapping[str, float], default: float) -> "Events":
        """The same events with each one's strength set by its type (matched case-insensitively)."""
        # Tenants' files spell event types differently ("watch", "WATCH").
        table = {name.lower(): weight for name, weight in weights.items()}
        per_kind = np.array([table.get(name.lower(), default) for name in self.kind_names.tolist()], dtype=np.float64)
        return replace(self, strength=per_kind[self.kinds])

    def split(self) -> tuple["Events", dict[int, np.ndarray]]:
        """The benchmark's rule: users with 5+ events hold out their last fifth (at least one).

        Returns the rest and, per user, the held-out items they had not had before: the ones to predict.
        """
        n = np.bincount(self.rows, minlength=len(self.users))[self.rows]
        held = np.where(n >= 5, np.maximum(1, np.floor(0.2 * n + 1e-9)), 0)
        test = _positions(self.rows) >= n - held
        kept = {name: getattr(self, name)[~test] for name in ("rows", "cols", "times", "kinds", "strength")}
        rest = replace(self, **kept)
        earlier = set(zip(rest.rows.tolist(), rest.cols.tolist(), strict=True))
        truth: dict[int, set[int]] = {}
        for row, col in zip(self.rows[test].tolist(), self.cols[test].tolist(), strict=True):
            if (row, col) not in earlier:
                truth.setdefault(row, set()).add(col)
        return rest, {row: np.array(sorted(cols)) for row, cols in truth.items()}

    def collapse(self) -> "Log":
        """One entry per (user, item): its strongest event, placed where its latest event is."""
        pair = self.rows.astype(np.int64) * len(self.items) + self.cols
        by_pair = np.lexsort((np.arange(len(pair)), pair))
        new_pair = np.r_[True, pair[by_pair][1:] != pair[by_pair][:-1]]
        strongest = np.maximum.reduceat(self.strength[by_pair], np.flatnonzero(new_pair))
        last = by_pair[np.r_[new_pair[1:], True]]
        keep = np.argsort(last, kind="stable")
        last = last[keep]
        return Log(self.users, self.items, self.rows[last], self.cols[last], self.times[last], strongest[keep])


@dataclass(frozen=True)
class Log:
    """Interactions collapsed to one entry per (user, item), sorted by user, then time of the latest event."""

    users: np.ndarray
    items: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    times: np.ndarray
    strength: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.users), len(self.items)

    def histories(self) -> "History":
        # Both matrices are built on one sparsity pattern, so that their data arrays line up entry by entry.
        pattern = sp.csr_matrix((np.arange(1.0, len(self.rows) + 1), (self.rows, self.cols)), shape=self.shape)
        pattern.sort_indices()
        entry = pattern.data.astype(np.int64) - 1
        age = np.bincount(self.rows, minlength=len(self.users))[self.rows] - 1 - _positions(self.rows)

        def on_pattern(values: np.ndarray) -> sp.csr_matrix:
            return sp.csr_matrix((values[entry].astype(np.float32), pattern.indices, pattern.indptr), self.shape)

        return History(on_pattern(self.strength), on_pattern(age + 1.0))


@dataclass(frozen=True)
class History:
    """Each user's items: event strength, and age (how many items ago they had it), stored plus one so that
    the latest item is no implicit zero. Both matrices share one sparsity pattern."""

    strength: sp.csr_matrix
    age: sp.csr_matrix

    def rows(self, rows) -> "History":
        return History(self.strength[rows], self.age[rows])

    def weights(self, half_life: float) -> sp.csr_matrix:
        """Event strength halved every `half_life` items back from the user's latest.

        Items that have decayed below MIN_DECAY are dropped: they change nothing, and a long history would
        otherwise cost time on every product with it.
        """
        decay = 0.5 ** ((self.age.data - 1.0) / half_life)
        parts = (self.strength.data * decay, self.age.indices, self.age.indptr)
        weights = sp.csr_matrix(parts, self.age.shape, copy=True)  # a copy: eliminate_zeros works in place
        weights.data[decay < MIN_DECAY] = 0.0
        weights.eliminate_zeros()
        return weights

    def seen(self, row: int) -> np.ndarray:
        return self.age.indices[self.age.indptr[row] : self.age.indptr[row + 1]]


def _positions(rows: np.ndarray) -> np.ndarray:
    """For rows sorted by user, each entry's place within its user's run, from 0."""
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    return np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))


class Ease:
    """EASE on the most-watched items: weights B = I - P / diag(P) with P = (XᵀX + l2·I)⁻¹.

    With fewer users than items, P comes from the Woodbury identity, P = (I - Xᵀ(XXᵀ + l2·I)⁻¹X) / l2, so the
    cubic cost is in whichever of the two is smaller.
    """

    def __init__(self, log: Log, *, l2: float, min_support: int, max_items: int):
        relations = sp.csr_matrix((log.strength, (log.rows, log.cols)), shape=log.shape).tocsc()
        self.items = _most_watched(np.diff(relations.indptr), min_support, max_items)
        self.n_items, self.l2 = len(log.items), float(l2)
        # Single precision halves the time of the inverse, and l2 keeps the system well conditioned for it.
        self.x = x = relations[:, self.items].tocsr().astype(np.float32)
        if x.shape[0] < x.shape[1]:
            self.k = np.linalg.inv(_with_ridge((x @ x.T).toarray(), self.l2))
            self.kx = np.asarray(x.T @ self.k).T  # users x items; K is symmetric
            self.p = None
            self.diag = (1.0 - np.asarray(x.multiply(self.kx).sum(axis=0)).ravel()) / self.l2
        else:
            self.p = np.linalg.inv(_with_ridge((x.T @ x).toarray(), self.l2))
            self.diag = np.diag(self.p).copy()

    def scores(self, weights: sp.csr_matrix) -> np.ndarray:
        """weights @ B without forming B (to compare settings): h - (hP)/diag(P), as B's diagonal is 0."""
        h = weights[:, self.items].astype(np.float32)
        if self.p is not None:
            hp = np.asarray(h @ self.p)
        else:
            hp = (h.toarray() - np.asarray((h @ self.x.T) @ self.k) @ self.x) / self.l2
        out = np.zeros((weights.shape[0], self.n_items), dtype=np.float32)
        out[:, self.items] = h.toarray() - hp / self.diag
        return out

    def weights(self, keep: int) -> sp.csr_matrix:
        """B with each item's `keep` strongest sources, as a sparse matrix over all items."""
        m = len(self.items)
        keep = min(keep, max(m - 1, 1))
        parts = []
        for start in range(0, m, WEIGHT_BLOCK):
            block = np.arange(start, min(start + WEIGHT_BLOCK, m))
            rows = self._p_rows(block) / -self.diag[block, None]  # row j holds B[:, j], as P is symmetric
            rows[np.arange(len(block)), block] = 0.0
            if keep < m - 1:
                weakest = -np.partition(-np.abs(rows), keep - 1, axis=1)[:, keep - 1 : keep]
                rows[np.abs(rows) < weakest] = 0.0
            parts.append(sp.csr_matrix(rows.astype(np.float32)))
        by_target = sp.vstack(parts).tocoo() if parts else sp.coo_matrix((0, 0))
        sources, targets = self.items[by_target.col], self.items[by_target.row]
        return sp.csr_matrix((by_target.data, (sources, targets)), shape=(self.n_items, self.n_items))

    def _p_rows(self, block: np.ndarray) -> np.ndarray:
        if self.p is not None:
            return self.p[block]
        rows = -np.asarray(self.x.T @ self.kx[:, block]).T
        rows[np.arange(len(block)), block] += 1.0
        return rows / self.l2


def _with_ridge(gram: np.ndarray, l2: float) -> np.ndarray:
    gram[np.diag_indices_from(gram)] += np.float32(l2)
    return gram


def _most_watched(support: np.ndarray, min_support: int, limit: int) -> np.ndarray:
    """Indices of the `limit` items with the most users (ties: lower index), leaving out rarer than min_support."""
    ranked = np.lexsort((np.arange(len(support)), -support))[:limit]
    return np.sort(ranked[support[ranked] >= min_support])


def next_items(log: Log, keep: int) -> sp.csr_matrix:
    """Where users went next: from each item, the share of later items within NEXT_WINDOW steps (decayed)."""
    sources, targets, weights = [], [], []
    for gap in range(1, NEXT_WINDOW + 1):
        same_user = log.rows[:-gap] == log.rows[gap:]
        sources.append(log.cols[:-gap][same_user])
        targets.append(log.cols[gap:][same_user])
        weights.append(np.full(same_user.sum(), 0.5 ** ((gap - 1) / NEXT_DECAY)))
    n = len(log.items)
    counts = sp.csr_matrix((np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))), (n, n))
    totals = np.asarray(counts.sum(axis=1)).ravel()
    return _keep_per_row(sp.diags(1.0 / np.maximum(totals, 1e-12)) @ counts, keep).astype(np.float32)


def _keep_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """The `keep` largest entries of each row (ties: lower column)."""
    matrix = sp.csr_matrix(matrix)
    matrix.sort_indices()
    kept = np.ones(matrix.nnz, dtype=bool)
    for row in np.flatnonzero(np.diff(matrix.indptr) > keep):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        order = np.lexsort((matrix.indices[start:stop], -matrix.data[start:stop]))
        kept[start + order[keep:]] = False
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    return sp.csr_matrix((matrix.data[kept], (rows[kept], matrix.indices[kept])), shape=matrix.shape)


def genre_matrix(items: np.ndarray, item_genres: Mapping[str, Sequence[str] | str]) -> sp.csr_matrix:
    """Items x genres, 1 where the item has the genre; no columns at all without genre data."""
    per_item = [_genre_list(item_genres.get(item, ())) for item in items.tolist()]
    names = sorted({g for genres in per_item for g in genres})
    index = {name: j for j, name in enumerate(names)}
    pairs = sorted({(i, index[g]) for i, genres in enumerate(per_item) for g in genres})
    rows, cols = (np.array(a, dtype=np.int64) for a in zip(*pairs, strict=True)) if pairs else ([], [])
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(items), len(names)))


def _genre_list(genres: Sequence[str] | str) -> list[str]:
    # The GENRES column as stored in Personalize files is "Action|Sci-Fi".
    genres = genres.split("|") if isinstance(genres, str) else genres
    return [g.strip() for g in genres if g and g.strip()]


def interest(log: Log) -> np.ndarray:
    """Users per day since the item first appeared: new items are not penalised for having had less time."""
    first_seen = np.full(len(log.items), np.inf)
    np.minimum.at(first_seen, log.cols, log.times)
    days = np.maximum((log.times.max() - first_seen) / DAY, MIN_EXPOSURE_DAYS)
    return np.bincount(log.cols, minlength=len(log.items)) / days


def popularity(log: Log, half_life_days: float | None) -> np.ndarray:
    """Recency-weighted number of users per item."""
    age_days = (log.times.max() - log.times) / DAY
    # Capped so that very old events keep a tiny weight instead of underflowing to zero.
    decay = 0.5 ** np.minimum(age_days / half_life_days, 100.0) if half_life_days else np.ones_like(age_days)
    return np.bincount(log.cols, weights=log.strength * decay, minlength=len(log.items)).astype(np.float64)


class Signals:
    """The three signals for a batch of histories, each scaled to the user's best item."""

    def __init__(
        self,
        co_watch: Callable[[sp.csr_matrix], object],
        next_weights: sp.csr_matrix,
        genres: sp.csr_matrix,
        item_interest: np.ndarray,
    ):
        self._co_watch, self.next_weights, self.genres = co_watch, next_weights, genres
        # Genre -> item: an item's share of its genre's interest, so that a genre's items sum to one.
        per_genre = np.asarray(genres.T @ item_interest).ravel()
        shares = genres.multiply(item_interest[:, None]) @ sp.diags(1.0 / np.maximum(per_genre, 1e-12))
        self.genre_items = shares.T.toarray().astype(np.float32)

    def co_watch(self, weights: sp.csr_matrix) -> np.ndarray:
        return scaled(self._co_watch(weights))

    def following(self, weights: sp.csr_matrix) -> np.ndarray:
        return scaled(weights @ self.next_weights)

    def taste(self, history: History) -> np.ndarray:
        mix = _dense(history.weights(TASTE_HALF_LIFE) @ self.genres)
        mix /= np.maximum(mix.sum(axis=1, keepdims=True), 1e-12)
        return scaled(mix @ self.genre_items)

    def blend(self, history: History, *, half_life: float, next_weight: float, genre_weight: float) -> np.ndarray:
        weights = history.weights(half_life)
        scores = self.co_watch(weights)
        if next_weight:
            scores += next_weight * self.following(weights)
        if genre_weight and self.genres.shape[1]:
            scores += genre_weight * self.taste(history)
        return scores


def _dense(matrix) -> np.ndarray:
    return (matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)).astype(np.float32)


def scaled(scores) -> np.ndarray:
    """Each row divided by its largest magnitude, so signals on different scales can be blended."""
    scores = _dense(scores)
    scores /= np.maximum(np.abs(scores).max(axis=1, keepdims=True), 1e-12)
    return scores
