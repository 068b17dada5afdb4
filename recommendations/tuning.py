"""Choosing the embedded recommender's settings per tenant, on a held-out slice of the tenant's own data.

The slice follows the benchmark's protocol (each user's last fifth), and settings are compared by NDCG@10 of
the held-out items, so the engine tunes itself the way an offline evaluation tunes the baselines it is
compared with. Plain numpy/scipy.
"""

from dataclasses import dataclass
from itertools import product

import numpy as np
import scipy.sparse as sp

from recommendations.scoring import Ease, Events, Log, Signals, interest, next_items, scaled

CHOICES = {
    "l2": (100.0, 300.0, 1000.0),  # EASE regularisation
    "history_half_life": (3.0, 10.0, 30.0),  # in items
    "next_weight": (0.0, 0.5, 1.0),
    "genre_weight": (0.0, 0.3, 1.0),
}
DEFAULTS = {"l2": 300.0, "history_half_life": 10.0, "next_weight": 0.5, "genre_weight": 0.0}
MIN_USERS = 20  # fewer users with a held-out slice than this: DEFAULTS are used
MAX_USERS = 300  # a sample this large tells the settings apart well enough ...
SAMPLE_CELLS = 3_000_000  # ... unless the catalog is so large that users x items would take too much memory,
MIN_SAMPLE = 100  # ... but never fewer than this
L2_SEARCH_MAX = 2500  # above this many items (or users, whichever is fewer) each EASE fit is too slow to repeat


def tune(events: Events, genres: sp.csr_matrix, fixed: dict, *, options: "EaseOptions") -> tuple[dict, float]:
    """The best settings (`fixed` ones kept) and their NDCG@10; NaN when there is too little data to compare.

    A coordinate search keeps it quick: regularisation and half-life on co-watch alone, then the blend
    weights, then the half-life again under that blend. Ties keep the earlier (simpler) setting.
    """
    rest, truth = events.split()
    if len(truth) < MIN_USERS:
        return DEFAULTS | fixed, float("nan")
    rest = rest.collapse()
    choices = CHOICES | {name: (value,) for name, value in fixed.items()}
    if min(rest.shape) > L2_SEARCH_MAX and "l2" not in fixed:
        choices["l2"] = (DEFAULTS["l2"],)
    if not genres.shape[1]:
        choices["genre_weight"] = (0.0,)
    trial = Trial(rest, truth, genres, options)
    best = {name: values[0] for name, values in choices.items()}
    for names in (("l2", "history_half_life"), ("next_weight", "genre_weight"), ("history_half_life",)):
        candidates = [best | dict(zip(names, values, strict=True)) for values in product(*map(choices.get, names))]
        best = max(candidates, key=trial.score)
    return best, trial.score(best)


@dataclass(frozen=True)
class EaseOptions:
    neighbours: int
    min_support: int
    max_items: int


class Trial:
    """Scores settings on the held-out slice, reusing each fitted signal across the settings that share it."""

    def __init__(self, rest: Log, truth: dict[int, np.ndarray], genres: sp.csr_matrix, options: EaseOptions):
        users = np.array(sorted(truth))
        sample = min(MAX_USERS, max(MIN_SAMPLE, SAMPLE_CELLS // rest.shape[1]))
        if len(users) > sample:
            users = np.sort(np.random.default_rng(0).choice(users, sample, replace=False))
        self.rest, self.options = rest, options
        self.history = rest.histories().rows(users)
        self.seen = self.history.age.toarray() > 0
        self.relevant = np.zeros_like(self.seen)
        for row, user in enumerate(users):
            self.relevant[row, truth[user]] = True
        self.signals = Signals(None, next_items(rest, options.neighbours), genres, interest(rest))
        self.eases: dict[float, Ease] = {}
        self.parts: dict[tuple, np.ndarray] = {}

    def score(self, setting: dict) -> float:
        l2, half_life = setting["l2"], setting["history_half_life"]
        scores = self._part("co-watch", l2, half_life).copy()
        if setting["next_weight"]:
            scores += setting["next_weight"] * self._part("next", half_life)
        if setting["genre_weight"]:
            scores += setting["genre_weight"] * self._part("taste")
        return ndcg(scores, self.seen, self.relevant)

    def _part(self, *key) -> np.ndarray:
        if key not in self.parts:
            self.parts[key] = self._compute(*key)
        return self.parts[key]

    def _compute(self, name: str, *args: float) -> np.ndarray:
        if name == "taste":
            return self.signals.taste(self.history)
        weights = self.history.weights(args[-1])
        if name == "next":
            return self.signals.following(weights)
        return scaled(self._ease(args[0]).scores(weights))

    def _ease(self, l2: float) -> Ease:
        if l2 not in self.eases:
            self.eases[l2] = Ease(
                self.rest, l2=l2, min_support=self.options.min_support, max_items=self.options.max_items
            )
        return self.eases[l2]


def ndcg(scores: np.ndarray, seen: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over users (rows): `relevant` marks their held-out items, `seen` the ones left out."""
    scores[seen] = -np.inf
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    gains = np.take_along_axis(relevant, top, axis=1) @ discount
    ideal = np.cumsum(discount)[np.minimum(relevant.sum(axis=1), k) - 1]
    return float(np.mean(gains / ideal))
