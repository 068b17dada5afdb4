"""Black-box evaluation without a database: train the product's engine on CSV files and write top-k per user.

    python -m recommendations.evaluate --train TRAIN.csv --users USERS.csv --out OUT.csv --k 25 [--items ITEMS.csv]

TRAIN has USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE (EVENT_TYPE optional); USERS has USER_ID; ITEMS has ITEM_ID and
GENRES (pipe-separated); OUT gets USER_ID,ITEM_ID,RANK with rank 1 best. The engine and its defaults are the
ones `recommender_train` uses, so an offline benchmark measures what tenants get.
"""

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from recommendations.engine import EngineParams, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, type=Path)
    parser.add_argument("--users", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--items", type=Path, help="ITEM_ID,GENRES; optional")
    parser.add_argument("--timing", type=Path, help="write {train_s, infer_s} as JSON here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    engine = train(*_interactions(args.train), item_genres=_genres(args.items), params=EngineParams())
    trained = time.perf_counter()
    users = _column(args.users, "USER_ID")
    ranked = engine.recommend_many(users, args.k)
    with args.out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["USER_ID", "ITEM_ID", "RANK"])
        for user in dict.fromkeys(users):
            writer.writerows([user, item, rank] for rank, (item, _) in enumerate(ranked[user], start=1))
    if args.timing:
        timing = {"train_s": trained - started, "infer_s": time.perf_counter() - trained}
        args.timing.write_text(json.dumps(timing))


def _interactions(path: Path) -> tuple[list[str], list[str], list[float], list[str]]:
    users, items, times, events = [], [], [], []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            users.append(row["USER_ID"])
            items.append(row["ITEM_ID"])
            times.append(float(row["TIMESTAMP"]))
            events.append(row.get("EVENT_TYPE") or "")
    return users, items, times, events


def _genres(path: Path | None) -> dict[str, list[str]]:
    if path is None or not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["ITEM_ID"]: (row.get("GENRES") or "").split("|") for row in csv.DictReader(f)}


def _column(path: Path, name: str) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [row[name] for row in csv.DictReader(f)]


if __name__ == "__main__":
    try:
        main()
    except (KeyError, ValueError, OSError) as exc:
        sys.exit(f"evaluate: {type(exc).__name__}: {exc}")
