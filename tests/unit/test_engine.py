"""The embedded recommender's math: ranking rules, the signals, tuning, persistence, and quality on demo data."""

import math
from collections import Counter, defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

from datasets.synthetic import generate
from recommendations.engine import WATCH_OVER_CLICK, Engine, EngineParams, train
from recommendations.scoring import Ease, Events

NOW = 1_767_225_600  # 2026-01-01
DAY = 86_400
FIXED = {"l2": 1.0, "history_half_life": 10.0, "next_weight": 0.0, "genre_weight": 0.0}


def fit(rows, genres=None, **params) -> Engine:
    """Train on (user, item, timestamp, event_type) tuples; the tuned settings fixed unless given."""
    users, items, times, events = zip(*rows, strict=True)
    return train(users, items, times, events, item_genres=genres, params=EngineParams(**(FIXED | params)))


def ids(recommendations):
    return [item for item, _ in recommendations]


def two_clusters(target_history):
    """Five fans of x1..x4, five fans of y1..y4, plus the user under test ("me")."""
    rows = [(f"fan-{c}{n}", f"{c}{i}", NOW - i, "watch") for c in "xy" for n in range(5) for i in range(1, 5)]
    return rows + [("me", item, when, "watch") for item, when in target_history]


def test_never_recommends_what_the_user_already_saw():
    engine = fit(two_clusters([("x1", NOW), ("x2", NOW)]))
    recommended = ids(engine.recommend("me", 10))
    assert {"x1", "x2"}.isdisjoint(recommended)
    assert recommended[:2] == ["x3", "x4"] and len(recommended) == 6


def test_same_data_gives_the_same_recommendations():
    data = generate(seed=3, n_items=60, n_contacts=40, n_interactions=1500)
    rows = [(r["USER_ID"], r["ITEM_ID"], r["TIMESTAMP"], r["EVENT_TYPE"]) for r in data.interactions]
    first, second = (train(*zip(*rows, strict=True)) for _ in range(2))
    assert first.params == second.params
    assert first.recommend_many(list(first.user_index), 5) == second.recommend_many(list(second.user_index), 5)


def test_ties_are_broken_by_item_id():
    engine = fit([("a", "i3", NOW, "watch"), ("b", "i1", NOW, "watch"), ("c", "i2", NOW, "watch")])
    assert ids(engine.popular(3)) == ["i1", "i2", "i3"]


def test_cold_user_gets_recently_popular_items():
    rows = [(f"u{n}", "old-hit", NOW - 400 * DAY, "watch") for n in range(6)]
    rows += [(f"u{n}", "new-hit", NOW, "watch") for n in range(4)]
    rows += [("u0", "niche", NOW, "watch")]
    engine = fit(rows)
    # Six views 400 days old weigh less than one view today with the default 120-day half-life.
    assert ids(engine.recommend("stranger", 3)) == ["new-hit", "niche", "old-hit"]
    assert ids(fit(rows, half_life_days=None).popular(3)) == ["old-hit", "new-hit", "niche"]
    assert engine.recommend("stranger", 3) == engine.popular(3)


def test_cold_user_gets_preferred_items_first():
    engine = fit(two_clusters([]) + [("extra", "x1", NOW, "watch")])
    likes_y = np.array([item.startswith("y") for item in engine.item_ids])
    assert ids(engine.recommend("stranger", 5, preferred=likes_y)) == ["y1", "y2", "y3", "y4", "x1"]
    # A user with history is scored on it: preferences are for cold start only.
    assert ids(engine.recommend("fan-x0", 1, preferred=likes_y)) == ids(engine.recommend("fan-x0", 1))


def test_allowed_mask_filters_items():
    engine = fit(two_clusters([("x1", NOW)]))
    allowed = np.array([item.startswith("y") for item in engine.item_ids])
    assert set(ids(engine.recommend("me", 10, allowed=allowed))) == {"y1", "y2", "y3", "y4"}
    assert set(ids(engine.popular(10, allowed=allowed))) == {"y1", "y2", "y3", "y4"}
    with pytest.raises(ValueError):
        engine.recommend("me", 3, allowed=np.ones(3, dtype=bool))


def test_excluded_items_are_left_out_for_that_user_only():
    engine = fit(two_clusters([("x1", NOW), ("x2", NOW)]))
    assert ids(engine.recommend("me", 2, exclude_item_ids=["x3", "not-an-item"])) == ["x4", "y1"]
    both = engine.recommend_many(["me", "stranger"], 2, exclude={"me": ["x3"]})
    assert ids(both["me"]) == ["x4", "y1"] and "x3" in ids(engine.recommend_many(["fan-y1"], 8)["fan-y1"])


def test_promoted_items_take_their_slots_in_score_order():
    engine = fit(two_clusters([("x1", NOW), ("x2", NOW)]))
    promoted = np.array([item in ("y3", "y4") for item in engine.item_ids])
    assert ids(engine.recommend("me", 3)) == ["x3", "x4", "y1"]
    assert ids(engine.recommend("me", 3, promoted=promoted, promoted_slots=1)) == ["x3", "x4", "y3"]
    assert ids(engine.recommend("me", 3, promoted=promoted, promoted_slots=2)) == ["x3", "y3", "y4"]
    # Promotions fill their slots for cold users too, and never beyond n.
    assert len(engine.recommend("stranger", 1, promoted=promoted, promoted_slots=3)) == 1


def test_recent_history_outweighs_old_history():
    # Three older y items against the two latest x items: with a short half-life the latest speak loudest.
    old = NOW - 400 * DAY
    history = [("y1", old), ("y2", old), ("y3", old), ("x1", NOW), ("x2", NOW)]
    rows = two_clusters(history)
    assert ids(fit(rows, history_half_life=1000.0).recommend("me", 1)) == ["y4"]
    assert ids(fit(rows, history_half_life=1.0).recommend("me", 3)) == ["x3", "x4", "y4"]


def test_watched_next_follows_sequences():
    # Everybody who watched a went on to b; nobody went from b to a. Co-watch alone can't tell them apart.
    rows = [(f"u{n}", item, NOW + k, "watch") for n in range(6) for k, item in enumerate(["a", "b", "c"])]
    rows += [("me", "a", NOW, "watch"), ("you", "b", NOW, "watch")]
    engine = fit(rows, next_weight=5.0)
    assert ids(engine.recommend("me", 2)) == ["b", "c"]
    assert ids(engine.recommend("you", 2)) == ["c", "a"]


def test_genre_taste_reaches_items_that_co_watch_does_not():
    rows = [(f"u{n}", "known-drama", NOW - DAY, "watch") for n in range(3)]
    rows += [("u9", "new-drama", NOW, "watch"), ("u9", "new-comedy", NOW, "watch"), ("me", "known-drama", NOW, "w")]
    genres = {"known-drama": ["Drama"], "new-drama": "Drama", "new-comedy": ["Comedy"], "ghost": ["Drama"]}
    engine = fit(rows, genres, genre_weight=1.0)
    assert ids(engine.recommend("me", 2)) == ["new-drama", "new-comedy"]
    # A catalog item nobody touched yet is still there, after every item with some evidence.
    assert ids(engine.recommend("me", 3))[-1] == "ghost"


def test_items_unknown_to_the_catalog_still_train():
    rows = two_clusters([("x1", NOW)]) + [("fan-x0", "brand-new", NOW, "watch")]
    engine = fit(rows, {"x1": ["Drama"], "not-watched-yet": "Comedy"}, genre_weight=0.3)
    assert "brand-new" in ids(engine.recommend("me", 10)) and "not-watched-yet" in engine.item_index


def test_event_weights_apply_case_insensitively():
    events = [("a", "i1", "WATCH"), ("b", "i2", "click"), ("b", "i2", "Click"), ("c", "i3", "rate")]
    rows = [(user, item, NOW, event) for user, item, event in events]
    engine = fit(rows, event_weights={"watch": 1.0, "click": 0.25}, default_event_weight=0.75)
    # Repeated events on one item collapse to the strongest, so two clicks count as one.
    assert engine.popular(3) == [("i1", 1.0), ("i3", 0.75), ("i2", 0.25)]
    assert engine.n_interactions == 4 and sorted(engine.user_index) == ["a", "b", "c"]


def test_ease_from_the_smaller_side_matches_the_textbook_formula():
    rng = np.random.default_rng(1)
    for n_users, n_items in ((5, 12), (12, 5)):  # the Woodbury (dual) form, then the primal one
        rows, cols = np.nonzero(rng.random((n_users, n_items)) < 0.5)
        events = Events.build(
            [f"u{r:02d}" for r in rows], [f"i{c:02d}" for c in cols], np.arange(len(rows)), ["w"] * len(rows)
        )
        log = events.collapse()
        x = sp.csr_matrix((log.strength, (log.rows, log.cols)), shape=log.shape).toarray()
        p = np.linalg.inv(x.T @ x + 3.0 * np.eye(log.shape[1]))
        expected = -p / np.diag(p)
        np.fill_diagonal(expected, 0.0)
        ease = Ease(log, l2=3.0, min_support=1, max_items=100)
        assert np.allclose(ease.weights(keep=100).toarray(), expected, atol=1e-5)
        assert np.allclose(ease.scores(sp.csr_matrix(x)), x @ expected, atol=1e-5)


def test_ease_keeps_the_strongest_weights_of_the_most_watched_items():
    data = generate(seed=5, n_items=60, n_contacts=50, n_interactions=2000)
    rows = [(r["USER_ID"], r["ITEM_ID"], r["TIMESTAMP"], r["EVENT_TYPE"]) for r in data.interactions]
    engine = fit(rows, neighbours=5, max_ease_items=30)
    weights_per_target = np.diff(engine.ease.tocsc().indptr)
    assert weights_per_target.max() <= 5 and np.count_nonzero(weights_per_target) <= 30


def test_tuning_chooses_settings_and_the_params_fix_them():
    data = generate(seed=4, n_items=80, n_contacts=60, n_interactions=3000)
    columns = list(
        zip(*[(r["USER_ID"], r["ITEM_ID"], r["TIMESTAMP"], r["EVENT_TYPE"]) for r in data.interactions], strict=True)
    )
    genres = {item["ITEM_ID"]: item["GENRES"] for item in data.items}
    tuned = train(*columns, item_genres=genres).params
    assert None not in (tuned.l2, tuned.history_half_life, tuned.next_weight, tuned.genre_weight)
    assert tuned.event_weights in (WATCH_OVER_CLICK, {})
    pinned = train(*columns, params=EngineParams(event_weights={"watch": 2.0}, history_half_life=7.0)).params
    assert pinned.event_weights == {"watch": 2.0} and pinned.history_half_life == 7.0 and pinned.genre_weight == 0.0


def test_bytes_round_trip_keeps_recommendations():
    rows = two_clusters([("x1", NOW - 30 * DAY), ("y1", NOW)])
    engine = fit(rows, {"x1": ["Drama"], "y1": ["Comedy"]}, half_life_days=60, next_weight=0.5, genre_weight=0.3)
    restored = Engine.from_bytes(engine.to_bytes())
    assert restored.params == engine.params and restored.n_interactions == engine.n_interactions
    for user in ("me", "fan-x0", "nobody"):
        assert restored.recommend(user, 5) == engine.recommend(user, 5)


def test_empty_or_ragged_input_is_refused():
    with pytest.raises(ValueError, match="without interactions"):
        train([], [], [], [])
    with pytest.raises(ValueError):
        train(["a"], ["i1", "i2"], [NOW], ["watch"])
    for bad in ({"l2": 0.0}, {"half_life_days": -1.0}, {"next_weight": -1.0}, {"neighbours": 0}):
        with pytest.raises(ValueError):
            fit([("a", "i1", NOW, "watch")], **bad)


def test_recommend_many_matches_recommend_one_by_one():
    data = generate(seed=3, n_items=80, n_contacts=40, n_interactions=1500)
    engine = fit([(r["USER_ID"], r["ITEM_ID"], r["TIMESTAMP"], r["EVENT_TYPE"]) for r in data.interactions])
    allowed = np.arange(len(engine.item_ids)) % 3 != 0
    users = [*engine.user_index, "nobody"]
    for mask in (None, allowed):
        batch = engine.recommend_many(users, 7, allowed=mask)
        assert list(batch) == users
        assert all(batch[u] == engine.recommend(u, 7, allowed=mask) for u in users)


def test_beats_popularity_on_the_demo_data():
    data = generate(seed=11, n_items=200, n_contacts=150, n_interactions=12000)
    train_rows, held_out = hold_out_last_fifth(data.interactions)
    genres = {item["ITEM_ID"]: item["GENRES"] for item in data.items}
    engine = train(*zip(*train_rows, strict=True), item_genres=genres)
    users = sorted(held_out)
    engine_hr, engine_ndcg = hit_rate_and_ndcg(engine.recommend_many(users, 10), held_out)
    pop_hr, pop_ndcg = hit_rate_and_ndcg(most_popular(train_rows, users, 10), held_out)
    assert engine_hr > pop_hr + 0.15
    assert engine_ndcg > 1.5 * pop_ndcg


def hold_out_last_fifth(interactions):
    """Per user, the last 20 % by time are the test; test items the user already had in train can't be hit."""
    by_user = defaultdict(list)
    for r in interactions:
        by_user[r["USER_ID"]].append((r["USER_ID"], r["ITEM_ID"], r["TIMESTAMP"], r["EVENT_TYPE"]))
    train_rows, held_out = [], {}
    for user, rows in by_user.items():
        rows.sort(key=lambda row: row[2])
        cut = len(rows) - max(1, len(rows) // 5)
        train_rows += rows[:cut]
        seen = {row[1] for row in rows[:cut]}
        if fresh := {row[1] for row in rows[cut:]} - seen:
            held_out[user] = fresh
    return train_rows, held_out


def most_popular(train_rows, users, n):
    counts = Counter(row[1] for row in train_rows)
    ranked = sorted(counts, key=lambda item: (-counts[item], item))
    seen = defaultdict(set)
    for row in train_rows:
        seen[row[0]].add(row[1])
    return {u: [(item, counts[item]) for item in ranked if item not in seen[u]][:n] for u in users}


def hit_rate_and_ndcg(recommendations, held_out, k=10):
    hits = ndcg = 0.0
    for user, relevant in held_out.items():
        ranked = ids(recommendations[user])[:k]
        gains = [1 / math.log2(rank + 2) for rank, item in enumerate(ranked) if item in relevant]
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
        hits += bool(gains)
        ndcg += sum(gains) / ideal
    return hits / len(held_out), ndcg / len(held_out)
