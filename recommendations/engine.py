"""The embedded recommender's math: an item-item model over recency-weighted implicit feedback.

EASE (a closed-form ridge regression of every item on all the others) serves catalogs of up to a few
thousand items; beyond that a dense item-by-item inverse gets too big, so sparse cosine item-kNN takes over.
Plain numpy/scipy; the caller owns storage and ids.
"""

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp

EASE_MAX_ITEMS = 8000
KNN_NEIGHBOURS = 100
SCORE_BATCH = 1024  # users scored per matrix product; bounds memory to batch x items
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EngineParams:
    l2: float = 200.0  # EASE regularisation
    half_life_days: float | None = 120.0  # recency decay; 0 or None disables it
    event_weights: dict[str, float] = field(default_factory=lambda: {"watch": 1.0, "click": 0.5})
    default_event_weight: float = 1.0  # for event types not in event_weights
    popularity_blend: float = 0.0  # adds this much of the (0..1 scaled) recent popularity to every score
    algorithm: str = "auto"  # "ease", "knn", or "auto": EASE up to EASE_MAX_ITEMS items


class Engine:
    """A trained model: who saw what (with weights), the item-item weights, and recent popularity."""

    def __init__(
        self,
        *,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        history: sp.csr_matrix,
        similarity: np.ndarray | sp.csr_matrix,
        popularity: np.ndarray,
        params: EngineParams,
        n_interactions: int,
    ):
        self.user_ids = list(user_ids)
        self.item_ids = list(item_ids)
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {it: i for i, it in enumerate(self.item_ids)}
        self.history = history
        self.similarity = similarity
        self.popularity = popularity
        self.params = params
        self.n_interactions = n_interactions

    def recommend(
        self,
        user_id: str,
        n: int,
        *,
        allowed: np.ndarray | None = None,
        exclude_item_ids: Iterable[str] = (),
        boost: dict[str, float] | None = None,
    ) -> list[tuple[str, float]]:
        """Top-n unseen items for one user, best first; unknown users get recent popularity.

        `allowed` is a boolean mask over `item_ids`. `boost` maps item ids to factors that raise (>1) or
        lower (<1) an item's score whatever its sign; a score of zero (no evidence at all) stays zero.
        """
        row = self.user_index.get(user_id)
        scores = self._popularity_scores() if row is None else self._scores([row])[0]
        excluded = [self.item_index[i] for i in exclude_item_ids if i in self.item_index]
        if boost:
            _apply_boost(scores, [self.item_index.get(i) for i in boost], list(boost.values()))
        return self._rank(scores, n, row, allowed, excluded)

    def recommend_many(
        self, user_ids: Sequence[str], n: int, *, allowed: np.ndarray | None = None
    ) -> dict[str, list[tuple[str, float]]]:
        """`recommend` for many users at once: one matrix product per batch instead of one per user."""
        known = [u for u in dict.fromkeys(user_ids) if u in self.user_index]
        result = {}
        for start in range(0, len(known), SCORE_BATCH):
            rows = [self.user_index[u] for u in known[start : start + SCORE_BATCH]]
            for row, scores in zip(rows, self._scores(rows), strict=True):
                result[self.user_ids[row]] = self._rank(scores, n, row, allowed)
        cold = self.popular(n, allowed=allowed) if len(known) < len(user_ids) else []
        return {u: result[u] if u in result else list(cold) for u in user_ids}

    def popular(self, n: int, *, allowed: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Items ranked by recency-weighted interaction volume."""
        return self._rank(self._popularity_scores(), n, None, allowed)

    def to_bytes(self) -> bytes:
        """Serialise with numpy's npz format (no pickle, so loading a stored model cannot run code)."""
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            "params": np.array(json.dumps(asdict(self.params))),
            "n_interactions": np.array(self.n_interactions),
            "user_ids": np.array(self.user_ids, dtype=str),
            "item_ids": np.array(self.item_ids, dtype=str),
            "popularity": self.popularity,
            **_sparse_arrays("history", self.history),
        }
        if sp.issparse(self.similarity):
            arrays |= _sparse_arrays("similarity", self.similarity)
        else:
            arrays["similarity"] = self.similarity
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Engine":
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            if int(f["format_version"]) != FORMAT_VERSION:
                raise ValueError(f"unsupported engine format {int(f['format_version'])}")
            similarity = f["similarity"] if "similarity" in f else _sparse_from(f, "similarity")
            return cls(
                user_ids=f["user_ids"].tolist(),
                item_ids=f["item_ids"].tolist(),
                history=_sparse_from(f, "history"),
                similarity=similarity,
                popularity=f["popularity"],
                params=EngineParams(**json.loads(str(f["params"]))),
                n_interactions=int(f["n_interactions"]),
            )

    def _scores(self, rows: list[int]) -> np.ndarray:
        product = self.history[rows] @ self.similarity
        scores = (product.toarray() if sp.issparse(product) else product).astype(np.float64)
        if self.params.popularity_blend:
            scale = self.params.popularity_blend / max(self.popularity.max(), 1e-12)
            scores += scale * self._popularity_scores()
        return scores

    def _popularity_scores(self) -> np.ndarray:
        return self.popularity.astype(np.float64)

    def _rank(
        self,
        scores: np.ndarray,
        n: int,
        row: int | None,
        allowed: np.ndarray | None,
        excluded: Sequence[int] = (),
    ) -> list[tuple[str, float]]:
        if row is not None:
            scores[self.history.indices[self.history.indptr[row] : self.history.indptr[row + 1]]] = -np.inf
        if allowed is not None:
            allowed = np.asarray(allowed)
            if allowed.dtype != bool or allowed.shape != (len(self.item_ids),):
                raise ValueError(f"allowed must be a boolean mask of length {len(self.item_ids)}")
            scores[~allowed] = -np.inf
        scores[list(excluded)] = -np.inf
        return [(self.item_ids[i], float(scores[i])) for i in _top_n(scores, n)]


def train(
    user_ids: Sequence[str],
    item_ids: Sequence[str],
    timestamps: Sequence[float],
    event_types: Sequence[str],
    *,
    params: EngineParams = EngineParams(),  # noqa: B008  (frozen, so sharing the default is safe)
) -> Engine:
    """Fit the model on parallel columns of interactions (one row per event)."""
    n = len(user_ids)
    if n == 0:
        raise ValueError("cannot train a recommender without interactions")
    if not len(item_ids) == len(timestamps) == len(event_types) == n:
        raise ValueError("user_ids, item_ids, timestamps and event_types must have the same length")
    if params.algorithm not in ("auto", "ease", "knn"):
        raise ValueError(f"unknown algorithm {params.algorithm!r}")
    if params.l2 <= 0 or (params.half_life_days or 0) < 0:
        raise ValueError("l2 must be positive and half_life_days must not be negative")
    users, rows = np.unique(np.asarray(user_ids, dtype=str), return_inverse=True)
    items, cols = np.unique(np.asarray(item_ids, dtype=str), return_inverse=True)
    strength = _event_weights(event_types, params)
    decay = _decay(np.asarray(timestamps, dtype=np.float64), params)
    shape = (len(users), len(items))
    # Item-item relations are learned from all history at full strength: decaying them too would leave a
    # catalog with old data (or a tenant that paused for a year) with almost nothing to learn from. Recency
    # belongs to the user's side: it decides which of their own items speak loudest.
    history = _matrix(strength * decay, rows, cols, shape)
    relations = _matrix(strength, rows, cols, shape) if params.half_life_days else history
    use_ease = params.algorithm == "ease" or (params.algorithm == "auto" and len(items) <= EASE_MAX_ITEMS)
    return Engine(
        user_ids=users.tolist(),
        item_ids=items.tolist(),
        history=history,
        similarity=_ease(relations, params.l2) if use_ease else _knn(relations, KNN_NEIGHBOURS),
        popularity=np.asarray(history.sum(axis=0), dtype=np.float64).ravel(),
        params=params,
        n_interactions=n,
    )


def _matrix(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    # Repeated events on the same (user, item) add up; explicit zeros are kept so a zero-weight event still
    # counts as "seen" and is never recommended back.
    matrix = sp.coo_matrix((values.astype(np.float32), (rows, cols)), shape=shape).tocsr()
    matrix.sum_duplicates()
    return matrix


def _event_weights(event_types: Sequence[str], params: EngineParams) -> np.ndarray:
    # Tenants' files spell event types differently ("watch", "WATCH"), so match them case-insensitively.
    table = {name.lower(): weight for name, weight in params.event_weights.items()}
    names, inverse = np.unique(np.asarray(event_types, dtype=str), return_inverse=True)
    per_name = np.array([table.get(name.lower(), params.default_event_weight) for name in names])
    return per_name[inverse]


def _decay(timestamps: np.ndarray, params: EngineParams) -> np.ndarray:
    if not params.half_life_days:
        return np.ones_like(timestamps)
    age_days = (timestamps.max() - timestamps) / 86_400.0
    # Capped so that very old events keep a tiny weight instead of underflowing to zero in float32.
    return 0.5 ** np.minimum(age_days / params.half_life_days, 100.0)


def _ease(history: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE item weights B = I - P / diag(P) with P = (XᵀX + l2·I)⁻¹, so an item never explains itself."""
    gram = (history.T @ history).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    weights = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
    weights /= -np.diag(weights).copy()  # in place: at 8,000 items every dense copy costs half a gigabyte
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


def _knn(history: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """Cosine item-item similarity keeping each item's `neighbours` strongest sources, in column blocks."""
    columns = history.tocsc()
    norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=0)).ravel())
    normalised = columns @ sp.diags(1.0 / np.maximum(norms, 1e-12))
    n_items = history.shape[1]
    block = max(1, 20_000_000 // n_items)  # ~80 MB of float32 per block
    keep = min(neighbours, n_items - 1)
    parts = []
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        sims = (normalised.T @ normalised[:, start:stop]).toarray().astype(np.float32)
        sims[np.arange(start, stop), np.arange(stop - start)] = 0.0
        if keep < n_items - 1:
            weakest = np.argpartition(-sims, keep, axis=0)[keep:]
            np.put_along_axis(sims, weakest, 0.0, axis=0)
        parts.append(sp.csc_matrix(sims))
    return sp.hstack(parts).tocsr()


def _apply_boost(scores: np.ndarray, columns: list[int | None], factors: list[float]) -> None:
    for column, factor in zip(columns, factors, strict=True):
        if column is not None and factor > 0:
            value = scores[column]
            scores[column] = value * factor if value > 0 else value / factor


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
    return {
        f"{name}_data": matrix.data,
        f"{name}_indices": matrix.indices,
        f"{name}_indptr": matrix.indptr,
        f"{name}_shape": np.array(matrix.shape),
    }


def _sparse_from(f, name: str) -> sp.csr_matrix:
    parts = (f[f"{name}_data"], f[f"{name}_indices"], f[f"{name}_indptr"])
    return sp.csr_matrix(parts, shape=tuple(f[f"{name}_shape"]))
