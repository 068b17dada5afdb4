"""Embedded recommender benchmark: quality against the usual baselines, and speed.

    .venv/bin/pip install -e '.[bench]'       # pandas and implicit, which the judge and its ALS baseline need
    .venv/bin/python bench/recommender.py --judge ../shared/bench/recbench.py --movielens ../shared/data/ml-latest-small

Quality is measured by an independent judge (a separate script, run as it is, not part of this project): it
splits each data set by time per user, tunes every baseline on a validation split carved from the training
part, and scores our `python -m recommendations.evaluate` command on the test part. Its tables are printed as
they come. The data sets are MovieLens latest-small (not shipped; GroupLens terms: research use, cite Harper
and Konstan 2015) and the synthetic demo tenant, written to a temporary directory.

Speed is measured here, in process: training on about 100,000 interactions, top-25 for one contact, and a
10,000-contact campaign in batch. The machine's load average is printed with the figures.
"""

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import load_average, percentile  # noqa: E402

from datasets.synthetic import generate, write_csvs  # noqa: E402
from recommendations.engine import Engine, train  # noqa: E402

SUT = "{python} -m recommendations.evaluate --train {{train}} --users {{users}} --out {{out}} --k {{k}} --items {{items}} --timing {{timing}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", type=Path, help="path to recbench.py; without it, quality is skipped")
    parser.add_argument("--movielens", type=Path, help="the ml-latest-small directory")
    parser.add_argument("--baselines", default="all", help="passed to the judge: all, none, or a comma list")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_rec_") as scratch:
        demo = Path(scratch) / "demo"
        write_csvs(generate(seed=7), demo)
        if args.judge:
            if args.movielens:
                judge(args.judge, args.movielens, "ml-latest-small", args.baselines)
            judge(args.judge, demo, "personalize", args.baselines)
    if not args.skip_speed:
        speed(args.movielens)


def judge(script: Path, data: Path, fmt: str, baselines: str) -> None:
    sut = SUT.format(python=sys.executable)
    command = [sys.executable, str(script), "run", "--data", str(data), "--format", fmt, "--baselines", baselines]
    command += ["--sut-cmd", f"cd {ROOT} && {sut}", "--sut-name", "embedded"]
    print(f"\n## quality: {data.name} (judge: {script.name})", flush=True)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    table = output[output.index("\n### ") :] if "\n### " in output else output
    print(table.strip(), flush=True)
    delta = [line for line in output.splitlines() if "delta NDCG@10" in line]
    print("\n".join(line.strip() for line in delta), flush=True)


def speed(movielens: Path | None) -> None:
    print(f"\n## speed ({os.cpu_count()} cores; load average before: {load_average()})\n", flush=True)
    print("| data | interactions | contacts | items | train s | top-25 p50 ms | top-25 p95 ms | batch |")
    print("|---|---|---|---|---|---|---|---|")
    if movielens:
        _row("MovieLens latest-small", *_movielens(movielens))
    for n_contacts, n_items in ((10_000, 2_000), (5_000, 5_000)):
        tenant = generate(seed=7, n_items=n_items, n_contacts=n_contacts, n_interactions=100_000)
        _row(f"synthetic, {n_items:,} items", _columns(tenant), {i["ITEM_ID"]: i["GENRES"] for i in tenant.items})
    print(f"\nload average after: {load_average()}", flush=True)


def _row(name: str, columns: tuple, genres: dict | None = None) -> None:
    started = time.perf_counter()
    engine = train(*columns, item_genres=genres)
    trained = time.perf_counter() - started
    p50, p95 = _latency(engine)
    users = engine.user_ids[:10_000]
    started = time.perf_counter()
    engine.recommend_many(users, 25)
    batch = time.perf_counter() - started
    counts = f"{len(columns[0]):,} | {len(engine.user_ids):,} | {len(engine.item_ids):,}"
    print(f"| {name} | {counts} | {trained:.2f} | {p50:.2f} | {p95:.2f} | {len(users):,} in {batch:.2f} s |")


def _latency(engine: Engine, samples: int = 200) -> tuple[float, float]:
    users = random.Random(0).sample(engine.user_ids, min(samples, len(engine.user_ids)))
    times = []
    for user in users:
        started = time.perf_counter()
        engine.recommend(user, 25)
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50), percentile(times, 95)


def _columns(dataset) -> tuple:
    rows = dataset.interactions
    return tuple([r[key] for r in rows] for key in ("USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"))


def _movielens(directory: Path) -> tuple[tuple, dict]:
    with (directory / "ratings.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with (directory / "movies.csv").open(newline="", encoding="utf-8") as f:
        genres = {row["movieId"]: row["genres"].replace("(no genres listed)", "") for row in csv.DictReader(f)}
    users, items, times = ([r[key] for r in rows] for key in ("userId", "movieId", "timestamp"))
    return (users, items, [float(t) for t in times], ["watch"] * len(rows)), genres


if __name__ == "__main__":
    main()
