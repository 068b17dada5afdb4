"""Personalize Runtime `GetRecommendations`: recommenders loaded by ARN, each a small item-item model.

Scores come from co-occurrence with the user's history (cosine similarity between items' audiences) with
popularity breaking ties and standing in for unknown users. Any `filterArn` removes the user's own items.
"""

import math
import threading
import uuid
from collections import defaultdict

from awsemu.wire import AwsError, read_json

INVALID = "InvalidInputException"  # the 400 error the personalize-runtime service model declares
DEFAULT_RESULTS = 25
MAX_RESULTS = 500
MAX_RESULTS_WITH_METADATA = 50
MAX_METADATA_COLUMNS = 10
POPULARITY_WEIGHT = 0.01  # small enough to only order items that co-occurrence leaves tied

FAULTS = {
    "throttle": ("ThrottlingException", 429, "Rate exceeded"),
    "timeout": ("RequestTimeoutException", 408, "Request timed out."),
    "internal": ("InternalFailure", 500, "The request processing has failed because of an unknown error."),
    "unavailable": ("ServiceUnavailable", 503, "The service is temporarily unavailable."),
}


class ItemItemModel:
    """Who interacted with what, and the catalogue, ready to rank items for a user or for an item."""

    def __init__(self, items: list[dict], interactions: list[dict]):
        self.items: dict[str, dict] = {}
        for row in items:
            row = {str(key).upper(): value for key, value in row.items()}
            self.items[_required(row, "ITEM_ID", "item")] = row
        self.history: dict[str, set[str]] = defaultdict(set)
        self.audience: dict[str, set[str]] = defaultdict(set)
        for row in interactions:
            row = {str(key).upper(): value for key, value in row.items()}
            user, item = _required(row, "USER_ID", "interaction"), _required(row, "ITEM_ID", "interaction")
            self.history[user].add(item)
            self.audience[item].add(user)
            self.items.setdefault(item, {"ITEM_ID": item})
        self.top_audience = max((len(users) for users in self.audience.values()), default=1)

    def rank(self, seeds: set[str], exclude: set[str]) -> list[tuple[str, float]]:
        """Every catalogue item not excluded, best first, with scores that sum to 1."""
        affinity = self._affinity(seeds)
        candidates = [item for item in self.items if item not in exclude]
        raw = {item: affinity.get(item, 0.0) + self._popularity(item) for item in candidates}
        total = sum(raw.values()) or 1.0
        ranked = sorted(raw.items(), key=lambda pair: (-pair[1], pair[0]))
        return [(item, round(score / total, 6)) for item, score in ranked]

    def _popularity(self, item: str) -> float:
        return POPULARITY_WEIGHT * len(self.audience.get(item, ())) / self.top_audience

    def _affinity(self, seeds: set[str]) -> dict[str, float]:
        # Sum of cosine similarities to the seeds, computed through the users who share them so the
        # cost is one pass over those users' histories rather than an item-by-item matrix.
        weight: dict[str, float] = defaultdict(float)
        for seed in seeds:
            users = self.audience.get(seed, ())
            for user in users:
                weight[user] += 1 / math.sqrt(len(users))
        affinity: dict[str, float] = defaultdict(float)
        for user, w in weight.items():
            for item in self.history[user]:
                affinity[item] += w
        # Each seed is perfectly similar to itself (exactly 1); that says nothing about taste.
        return {
            item: max(0.0, score / math.sqrt(len(self.audience[item])) - (item in seeds))
            for item, score in affinity.items()
        }


class PersonalizeStore:
    """The recommenders and campaigns the emulator serves, by ARN. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._models: dict[str, ItemItemModel] = {}

    def load(self, arn: str, items: list[dict] = (), interactions: list[dict] = ()) -> None:
        """Serve `arn` from Items and Interactions rows (Personalize's column names), replacing old data."""
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            raise ValueError("arn must be a Personalize recommender or campaign ARN")
        items, interactions = list(items), list(interactions)
        if not all(isinstance(row, dict) for row in items + interactions):
            raise ValueError("items and interactions must be lists of objects (one per row)")
        model = ItemItemModel(items, interactions)
        with self._lock:
            self._models[arn] = model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def get_recommendations(self, body: bytes) -> dict:
        """The GetRecommendations reply for a request body, or AwsError as the real service would answer."""
        request = read_json(body, INVALID)
        arn = target_arn(request)
        with self._lock:
            model = self._models.get(arn)
        if model is None:
            raise AwsError("ResourceNotFoundException", 404, f"Could not find the resource: {arn}")
        columns = _metadata_columns(request)
        count = _num_results(request, with_metadata=bool(columns))
        seeds, exclude = _seeds(model, request)
        ranked = model.rank(seeds, exclude)[:count]
        return {
            "itemList": [_predicted_item(model, item, score, columns) for item, score in ranked],
            "recommendationId": f"RID-{uuid.uuid4()}",
        }


def peek_target(body: bytes) -> str:
    """The ARN a request body names, or "" when it names none; for logging and knobs before validation."""
    try:
        return target_arn(read_json(body, INVALID))
    except AwsError:
        return ""


def target_arn(request: dict) -> str:
    """The recommender or campaign ARN a request names."""
    arns = [request[key] for key in ("recommenderArn", "campaignArn") if request.get(key)]
    if len(arns) != 1 or not isinstance(arns[0], str):
        raise AwsError(INVALID, 400, "Provide exactly one of recommenderArn or campaignArn.")
    return arns[0]


def _seeds(model: ItemItemModel, request: dict) -> tuple[set[str], set[str]]:
    """The items to recommend from, and the items never to return."""
    user_id, item_id = request.get("userId"), request.get("itemId")
    if user_id:
        seen = model.history.get(user_id, set())
        return seen, set(seen) if request.get("filterArn") else set()
    if item_id:  # related items
        return {item_id}, {item_id}
    raise AwsError(INVALID, 400, "Provide a userId (or an itemId for related items).")


def _num_results(request: dict, with_metadata: bool) -> int:
    count = request.get("numResults") or DEFAULT_RESULTS
    limit = MAX_RESULTS_WITH_METADATA if with_metadata else MAX_RESULTS
    if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= limit:
        why = " when metadataColumns are requested" if with_metadata else ""
        raise AwsError(INVALID, 400, f"numResults must be between 1 and {limit}{why}.")
    return count


def _metadata_columns(request: dict) -> list[str]:
    columns = request.get("metadataColumns") or {}
    if not isinstance(columns, dict) or set(columns) - {"ITEMS"}:
        raise AwsError(INVALID, 400, "metadataColumns accepts only the ITEMS dataset.")
    names = columns.get("ITEMS") or []
    if not isinstance(names, list) or len(names) > MAX_METADATA_COLUMNS:
        raise AwsError(INVALID, 400, f"metadataColumns.ITEMS takes at most {MAX_METADATA_COLUMNS} columns.")
    return names


def _predicted_item(model: ItemItemModel, item: str, score: float, columns: list[str]) -> dict:
    entry = {"itemId": item, "score": score}
    if columns:
        row = model.items[item]
        values = {name: row.get(name.upper()) for name in columns}
        entry["metadata"] = {name: _as_string(value) for name, value in values.items() if value is not None}
    return entry


def _as_string(value) -> str:
    # The real service returns every metadata value as a string; lists use Personalize's "|" separator.
    if isinstance(value, list | tuple):
        return "|".join(str(v) for v in value)
    return str(value)


def _required(row: dict, column: str, kind: str) -> str:
    value = row.get(column)
    if value is None or str(value) == "":
        raise ValueError(f"every {kind} row needs {column}: {row!r}")
    return str(value)
