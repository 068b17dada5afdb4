"""Favorite genre: weighted, recency-decayed genre counts with a deterministic winner."""

import pytest

from recommendations.favorite_genre import favorite_genre, genre_scores

NOW = 1_767_225_600.0
DAY = 86_400.0


def test_counts_every_genre_of_an_item_in_full():
    history = [(["Action", "Sci-Fi"], NOW, 1.0), (["Sci-Fi"], NOW, 1.0), (["Drama"], NOW, 0.5)]
    assert genre_scores(history, now=NOW) == {"Action": 1.0, "Sci-Fi": 2.0, "Drama": 0.5}
    assert favorite_genre(history, now=NOW) == "Sci-Fi"


def test_weights_count():
    history = [(["Drama"], NOW, 1.0), (["Drama"], NOW, 1.0), (["Comedy"], NOW, 3.0)]
    assert favorite_genre(history, now=NOW) == "Comedy"


def test_recency_flips_the_winner():
    history = [(["Drama"], NOW - 365 * DAY, 1.0)] * 3 + [(["Comedy"], NOW - 2 * DAY, 1.0)]
    assert favorite_genre(history, now=NOW, half_life_days=None) == "Drama"
    assert favorite_genre(history, now=NOW, half_life_days=90) == "Comedy"
    assert genre_scores(history, now=NOW, half_life_days=90)["Drama"] == pytest.approx(3 * 0.5 ** (365 / 90))


def test_ties_go_to_the_alphabetically_first_genre():
    history = [(["Thriller"], NOW, 1.0), (["Comedy", "Horror"], NOW, 1.0)]
    assert favorite_genre(history, now=NOW) == "Comedy"
    assert favorite_genre(reversed(history), now=NOW) == "Comedy"


def test_near_ties_from_float_error_still_tie():
    history = [(["Horror"], NOW, 0.1), (["Horror"], NOW, 0.2), (["Crime"], NOW, 0.3)]
    assert 0.1 + 0.2 != 0.3
    assert favorite_genre(history, now=NOW) == "Crime"


def test_empty_or_weightless_history_has_no_favorite():
    assert favorite_genre([], now=NOW) is None
    assert genre_scores([], now=NOW) == {}
    assert favorite_genre([(["Drama"], NOW, 0.0), ([], NOW, 1.0)], now=NOW) is None


def test_accepts_the_stored_pipe_joined_genres():
    assert genre_scores([("Action|Sci-Fi", NOW, 1.0)], now=NOW) == {"Action": 1.0, "Sci-Fi": 1.0}


def test_future_events_count_as_fresh_not_more():
    assert genre_scores([(["Drama"], NOW + 30 * DAY, 1.0)], now=NOW) == {"Drama": 1.0}
