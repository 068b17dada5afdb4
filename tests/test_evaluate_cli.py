"""python -m recommendations.evaluate: the database-free command a benchmark drives, with the product's engine."""

import csv
import subprocess
import sys
from pathlib import Path

from datasets.synthetic import generate
from recommendations.engine import EngineParams, train

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, header: list[str], rows) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "recommendations.evaluate", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def read_out(path: Path) -> dict[str, list[tuple[str, int]]]:
    ranked: dict[str, list[tuple[str, int]]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            ranked.setdefault(row["USER_ID"], []).append((row["ITEM_ID"], int(row["RANK"])))
    return ranked


def test_it_trains_the_products_engine_and_writes_top_k(tmp_path):
    data = generate(seed=2, n_items=60, n_contacts=30, n_interactions=900)
    rows = [(r["USER_ID"], r["ITEM_ID"], r["TIMESTAMP"], r["EVENT_TYPE"]) for r in data.interactions]
    train_csv = write(tmp_path / "train.csv", ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"], rows)
    items_csv = write(tmp_path / "items.csv", ["ITEM_ID", "GENRES", "TITLE"], [
        (i["ITEM_ID"], i["GENRES"], i["TITLE"]) for i in data.items
    ])  # fmt: skip
    users = ["u0003", "u0001", "stranger"]
    users_csv = write(tmp_path / "users.csv", ["USER_ID"], [[u] for u in users])
    out = tmp_path / "out.csv"
    done = run("--train", train_csv, "--users", users_csv, "--out", out, "--k", 5, "--items", items_csv)
    assert done.returncode == 0, done.stderr
    ranked = read_out(out)
    assert sorted(ranked) == sorted(users)
    seen = {(user, item) for user, item, *_ in rows}
    for user, picks in ranked.items():
        assert [rank for _, rank in picks] == [1, 2, 3, 4, 5]
        assert not any((user, item) in seen for item, _ in picks)
    genres = {i["ITEM_ID"]: i["GENRES"] for i in data.items}
    engine = train(*zip(*rows, strict=True), item_genres=genres, params=EngineParams())
    assert all([item for item, _ in ranked[u]] == [item for item, _ in engine.recommend(u, 5)] for u in users)


def test_items_and_event_types_are_optional(tmp_path):
    train_csv = write(tmp_path / "train.csv", ["USER_ID", "ITEM_ID", "TIMESTAMP"], [
        ("a", "i1", 1), ("a", "i2", 2), ("b", "i2", 3), ("b", "i3", 4), ("c", "i3", 5),
    ])  # fmt: skip
    users_csv = write(tmp_path / "users.csv", ["USER_ID"], [["a"], ["zed"]])
    out = tmp_path / "out.csv"
    assert run("--train", train_csv, "--users", users_csv, "--out", out, "--k", 25, "--items", "").returncode == 0
    ranked = read_out(out)
    assert [item for item, _ in ranked["a"]] == ["i3"] and len(ranked["zed"]) == 3


def test_bad_input_is_reported_without_a_traceback(tmp_path):
    users_csv = write(tmp_path / "users.csv", ["USER_ID"], [["a"]])
    done = run("--train", tmp_path / "missing.csv", "--users", users_csv, "--out", tmp_path / "o.csv")
    assert done.returncode != 0 and "missing.csv" in done.stderr and "Traceback" not in done.stderr
