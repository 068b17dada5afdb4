"""Personalize Runtime `GetRecommendations`, each recommender a small item-item model.

Recommenders and campaigns come from the control plane (`personalize_control`: data imported from S3, filters
created by expression) or, as a side door for tests, are loaded by ARN with `load`; on a loaded one any
`filterArn` removes the user's own items. Scores come from co-occurrence with the user's history (cosine
similarity between items' audiences), with popularity breaking ties and standing in for unknown users.
"""

import math
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from awsemu import personalize_filters
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
        self.events: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # user -> item -> types
        for row in interactions:
            row = {str(key).upper(): value for key, value in row.items()}
            user, item = _required(row, "USER_ID", "interaction"), _required(row, "ITEM_ID", "interaction")
            self.history[user].add(item)
            self.audience[item].add(user)
            self.events[user][item].add(str(row.get("EVENT_TYPE") or ""))
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


@dataclass(frozen=True)
class Served:
    """What answers for one recommender or campaign ARN."""

    model: ItemItemModel
    # filter ARN -> its expressions; None for a loaded recommender, where any filter removes seen items
    filters: Callable[[str], tuple] | None = None
    metadata: bool = True  # enableMetadataWithRecommendations
    columns: frozenset[str] | None = None  # the Items schema's columns, when known


class PersonalizeStore:
    """The runtime: recommenders loaded by ARN, then those the control plane serves. Thread-safe."""

    def __init__(self, control=None):
        self._lock = threading.Lock()
        self._models: dict[str, ItemItemModel] = {}
        self.control = control  # PersonalizeControl, or None for a runtime with loaded recommenders only

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

    def get_recommendations(self, body: bytes, region: str = "", account: str = "") -> dict:
        """The GetRecommendations reply for a request body, or AwsError as the real service would answer."""
        request = read_json(body, INVALID)
        served = self._served(target_arn(request), region, account)
        model = served.model
        columns = _metadata_columns(request, served)
        count = _num_results(request, with_metadata=bool(columns))
        seeds, exclude = _seeds(model, request)
        user_events = model.events.get(request.get("userId") or "", {})
        ranked = [pair for pair in model.rank(seeds, exclude) if self._keep(served, request, user_events)(pair[0])]
        promoted = self._promoted(served, request, ranked, count, user_events)
        chosen = [pair for pair in ranked if pair[0] in promoted][: len(promoted)]
        chosen += [pair for pair in ranked if pair[0] not in promoted][: count - len(chosen)]
        chosen.sort(key=lambda pair: (-pair[1], pair[0]))
        return {
            "itemList": [_predicted_item(model, item, score, columns, promoted.get(item)) for item, score in chosen],
            "recommendationId": f"RID-{uuid.uuid4()}",
        }

    def _served(self, arn: str, region: str, account: str) -> Served:
        with self._lock:
            model = self._models.get(arn)
        if model is not None:
            return Served(model)
        served = self.control.serve(arn, region, account) if self.control else None
        if served is None:
            raise AwsError("ResourceNotFoundException", 404, f"Could not find the resource: {arn}")
        return served

    def _keep(self, served: Served, request: dict, user_events: dict) -> Callable[[str], bool]:
        filter_arn = request.get("filterArn")
        if not filter_arn:
            return lambda item: True
        if served.filters is None:
            return lambda item: item not in user_events
        return self._predicate(served, filter_arn, request.get("filterValues") or {}, user_events)

    def _predicate(self, served: Served, filter_arn: str, values: dict, user_events: dict):
        return personalize_filters.predicate(
            served.filters(filter_arn), item_row=lambda item: served.model.items.get(item, {}),
            user_events=user_events, filter_values=values,
        )  # fmt: skip

    def _promoted(self, served, request, ranked, count, user_events) -> dict[str, str]:
        """item -> promotion name, for the share of results a promotion claims."""
        promotions = request.get("promotions") or []
        if len(promotions) > 1:
            raise AwsError(INVALID, 400, "Only one promotion can be applied to a request.")
        if not promotions:
            return {}
        promotion = promotions[0]
        share = promotion.get("percentPromotedItems", 0)
        if not promotion.get("filterArn") or not isinstance(share, int) or not 1 <= share <= 100:
            raise AwsError(INVALID, 400, "A promotion needs a filterArn and percentPromotedItems from 1 to 100.")
        if served.filters is None:
            return {}  # a loaded recommender has no filter definitions to promote by
        keep = self._predicate(served, promotion["filterArn"], promotion.get("filterValues") or {}, user_events)
        slots = max(1, count * share // 100)
        return dict.fromkeys([item for item, _ in ranked if keep(item)][:slots], promotion.get("name", ""))


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
        return model.history.get(user_id, set()), set()
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


def _metadata_columns(request: dict, served: Served) -> list[str]:
    columns = request.get("metadataColumns") or {}
    if not isinstance(columns, dict) or set(columns) - {"ITEMS"}:
        raise AwsError(INVALID, 400, "metadataColumns accepts only the ITEMS dataset.")
    names = columns.get("ITEMS") or []
    if not isinstance(names, list) or len(names) > MAX_METADATA_COLUMNS:
        raise AwsError(INVALID, 400, f"metadataColumns.ITEMS takes at most {MAX_METADATA_COLUMNS} columns.")
    if names and not served.metadata:
        raise AwsError(INVALID, 400, "Metadata columns were requested but the recommender was created without "
                       "enableMetadataWithRecommendations.")  # fmt: skip
    unknown = [name for name in names if served.columns is not None and name.upper() not in served.columns]
    if unknown:
        raise AwsError(INVALID, 400, f"Column {unknown[0]} is not in the Items schema.")
    return names


def _predicted_item(model: ItemItemModel, item: str, score: float, columns: list[str], promotion: str | None):
    entry = {"itemId": item, "score": score}
    if promotion is not None:
        entry["promotionName"] = promotion
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
