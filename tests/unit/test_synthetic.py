"""The demo data generator: reproducible, well-formed, and shaped like real viewing behaviour."""

import csv
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from datasets.synthetic import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    USER_COLUMNS,
    generate,
    write_csvs,
)


@pytest.fixture(scope="module")
def dataset():
    return generate()


def test_same_seed_gives_identical_output():
    assert generate(seed=3, n_items=60, n_contacts=40, n_interactions=800) == generate(
        seed=3, n_items=60, n_contacts=40, n_interactions=800
    )


def test_different_seeds_give_different_data():
    a = generate(seed=1, n_items=60, n_contacts=40, n_interactions=800)
    b = generate(seed=2, n_items=60, n_contacts=40, n_interactions=800)
    assert a.items != b.items and a.users != b.users and a.interactions != b.interactions


def test_default_sizes(dataset):
    assert (len(dataset.users), len(dataset.items), len(dataset.interactions)) == (300, 400, 30000)
    assert dataset.items[0]["ITEM_ID"] == "m0001" and dataset.users[0]["USER_ID"] == "u0001"


def test_ids_emails_and_titles_are_unique(dataset):
    for rows, key in ((dataset.items, "ITEM_ID"), (dataset.items, "TITLE"), (dataset.users, "USER_ID"),
                      (dataset.users, "EMAIL")):  # fmt: skip
        values = [row[key] for row in rows]
        assert len(set(values)) == len(values), key


def test_titles_stay_unique_when_word_lists_run_short():
    items = generate(seed=5, n_items=3000, n_contacts=10, n_interactions=30).items
    assert len({item["TITLE"] for item in items}) == 3000


def test_emails_use_reserved_example_domains_only(dataset):
    domains = {user["EMAIL"].rsplit("@", 1)[1] for user in dataset.users}
    assert domains <= {"example.com", "example.org", "example.net"}


def test_user_fields_are_in_range(dataset):
    assert all(18 <= user["AGE"] <= 75 for user in dataset.users)
    assert {user["GENDER"] for user in dataset.users} <= {"female", "male", "nonbinary"}
    locales = Counter(user["LOCALE"] for user in dataset.users)
    assert locales.most_common(1)[0][0] == "en_US" and len(locales) >= 5


def test_item_fields_are_well_formed(dataset):
    for item in dataset.items:
        genres = item["GENRES"].split("|")
        assert 1 <= len(genres) <= 3 and len(set(genres)) == len(genres)
        assert 1.0 <= float(item["IMDB_RATING"]) <= 10.0 and item["IMDB_RATING"].count(".") == 1
        assert item["US_MATURITY_RATING_STRING"] == ("G", "PG", "PG-13", "R")[item["US_MATURITY_RATING"] - 1]
        assert item["PROMOTION"] in ("true", "false") and item["PLOT"].endswith(".")
    promoted = sum(item["PROMOTION"] == "true" for item in dataset.items)
    assert promoted == 20  # 5 %
    assert len({item["PLOT"] for item in dataset.items}) > 0.9 * len(dataset.items)


def test_maturity_fits_the_genres(dataset):
    def r_share(genre):
        rated = [i["US_MATURITY_RATING_STRING"] for i in dataset.items if genre in i["GENRES"].split("|")]
        return rated.count("R") / len(rated)

    assert r_share("Horror") > 0.5
    assert r_share("Family") < 0.1 and r_share("Animation") < 0.1


def test_every_user_has_at_least_three_interactions(dataset):
    counts = Counter(row["USER_ID"] for row in dataset.interactions)
    assert len(counts) == 300 and min(counts.values()) >= 3
    tight = generate(seed=1, n_items=50, n_contacts=30, n_interactions=90)
    assert set(Counter(row["USER_ID"] for row in tight.interactions).values()) == {3}


@pytest.mark.parametrize("seed", range(8))
def test_tiny_catalogs_still_generate(seed):
    data = generate(seed=seed, n_items=1, n_contacts=3, n_interactions=12)
    assert len(data.interactions) == 12 and {r["ITEM_ID"] for r in data.interactions} == {"m0001"}


def test_too_few_interactions_are_refused():
    with pytest.raises(ValueError):
        generate(n_contacts=10, n_interactions=29)


def test_interactions_are_unique_and_inside_the_window(dataset):
    keys = [tuple(row[c] for c in INTERACTION_COLUMNS) for row in dataset.interactions]
    assert len(set(keys)) == len(keys)
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    times = [row["TIMESTAMP"] for row in dataset.interactions]
    assert start - 550 * 86_400 <= min(times) and max(times) <= start
    assert {row["EVENT_TYPE"] for row in dataset.interactions} == {"watch", "click"}
    watch_share = sum(row["EVENT_TYPE"] == "watch" for row in dataset.interactions) / len(keys)
    assert 0.65 < watch_share < 0.75


def test_items_are_watched_only_after_they_join_the_catalog(dataset):
    created = {item["ITEM_ID"]: item["CREATION_TIMESTAMP"] for item in dataset.items}
    assert all(row["TIMESTAMP"] > created[row["ITEM_ID"]] for row in dataset.interactions)


def test_preferences_are_reflected_in_the_history(dataset):
    genres = {item["ITEM_ID"]: set(item["GENRES"].split("|")) for item in dataset.items}
    by_user = defaultdict(list)
    for row in dataset.interactions:
        by_user[row["USER_ID"]].append(genres[row["ITEM_ID"]])
    shares = [
        sum(bool(g & set(dataset.preferences[user])) for g in history) / len(history)
        for user, history in by_user.items()
    ]
    assert sum(shares) / len(shares) > 0.6
    assert all(2 <= len(p) <= 3 for p in dataset.preferences.values())
    assert all(tuple(user) == USER_COLUMNS for user in dataset.users)  # the taste itself stays hidden


def test_taste_drifts_towards_the_last_preferred_genre(dataset):
    genres = {item["ITEM_ID"]: set(item["GENRES"].split("|")) for item in dataset.items}
    by_user = defaultdict(list)
    for row in dataset.interactions:  # already in time order
        by_user[row["USER_ID"]].append(genres[row["ITEM_ID"]])
    early = late = 0
    for user, history in by_user.items():
        newest = dataset.preferences[user][-1]
        fifth = max(1, len(history) // 5)
        early += sum(newest in g for g in history[:fifth]) / fifth
        late += sum(newest in g for g in history[-fifth:]) / fifth
    assert late > 1.5 * early


def test_popularity_and_activity_are_long_tailed(dataset):
    per_item = sorted(Counter(row["ITEM_ID"] for row in dataset.interactions).values(), reverse=True)
    assert sum(per_item[:40]) > 0.3 * len(dataset.interactions)  # top 10 % of items
    per_user = sorted(Counter(row["USER_ID"] for row in dataset.interactions).values())
    assert per_user[-1] > 5 * per_user[len(per_user) // 2]


def test_csv_round_trip(dataset, tmp_path):
    paths = write_csvs(dataset, tmp_path)
    expected = {"users": (USER_COLUMNS, dataset.users), "items": (ITEM_COLUMNS, dataset.items),
                "interactions": (INTERACTION_COLUMNS, dataset.interactions)}  # fmt: skip
    assert set(paths) == set(expected)
    for name, (columns, rows) in expected.items():
        assert paths[name] == tmp_path / f"{name}.csv"
        with paths[name].open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames) == columns
            assert list(reader) == [{k: str(v) for k, v in row.items()} for row in rows]


def test_default_sizes_generate_quickly():
    started = time.perf_counter()
    generate(seed=11)
    assert time.perf_counter() - started < 2.0
