"""Benchmark: the local model writing real campaign emails (synthetic tenant, embedded picks, default prompt).

    .venv/bin/python bench/local_model.py [--emails 6] [--threads 2]

Prints, per email, tokens in/out, seconds and whether it passed validation; then prompt and generation
tokens per second, seconds per email and the pass rate. Needs the local model (`make install-local`).
"""

import argparse
import time
from types import SimpleNamespace

from benchdb import setup_django

setup_django(migrate=False)  # no database: the model, the picks and the prompt only

from django.conf import settings  # noqa: E402

from campaigns.generation import ANSWER_STOP, closed  # noqa: E402
from campaigns.prompting import default_source, prompt_context, render  # noqa: E402
from campaigns.validation import check_email  # noqa: E402
from datasets.synthetic import generate  # noqa: E402
from recommendations.base import Pick  # noqa: E402
from recommendations.engine import train  # noqa: E402
from recommendations.favorite_genre import favorite_genre  # noqa: E402
from routing.localmodel import ensure_model  # noqa: E402
from routing.providers.local import LocalProvider  # noqa: E402
from routing.seed import MODELS  # noqa: E402
from routing.types import LLMRequest  # noqa: E402

# The seed catalog's entry: the catalog lives in the database, which this benchmark does not use.
SPEC = next(fields for fields in MODELS if fields["key"] == "local/qwen2.5-1.5b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: the provider's choice)")
    args = parser.parse_args()

    data = generate(seed=7)
    items = {i["ITEM_ID"]: i for i in data.items}
    engine = train(
        [r["USER_ID"] for r in data.interactions], [r["ITEM_ID"] for r in data.interactions],
        [r["TIMESTAMP"] for r in data.interactions], [r["EVENT_TYPE"] for r in data.interactions],
    )  # fmt: skip
    tenant = SimpleNamespace(brand="Streamly", sender_name="Sam", signoff="Sam from Streamly")
    provider = LocalProvider(
        model_path=str(ensure_model(str(settings.LOCAL_MODEL_PATH))), n_threads=args.threads or None
    )
    system, body = default_source("default_system.txt"), default_source("default_email.j2")
    now = max(r["TIMESTAMP"] for r in data.interactions)
    totals = {"in": 0, "out": 0, "seconds": 0.0, "ok": 0}
    for user in data.users[: args.emails]:
        picks = [_pick(items[item_id], score) for item_id, score in engine.recommend(user["USER_ID"], 3)]
        history = [
            (items[r["ITEM_ID"]]["GENRES"].split("|"), r["TIMESTAMP"], 1.0)
            for r in data.interactions
            if r["USER_ID"] == user["USER_ID"]
        ]
        contact = SimpleNamespace(
            first_name=user["FIRST_NAME"],
            last_name=user["LAST_NAME"],
            age=user["AGE"],
            gender=user["GENDER"],
            locale=user["LOCALE"],
        )
        context = prompt_context(
            tenant=tenant, campaign=None, contact=contact, picks=picks, favorite_genre=favorite_genre(history, now=now)
        )
        started = time.perf_counter()
        response = provider.converse(
            LLMRequest(
                "local",
                render(system, context),
                render(body, context),
                max_tokens=SPEC["max_tokens"],
                temperature=SPEC["temperature"],
                stop=ANSWER_STOP,
            )
        )
        seconds = time.perf_counter() - started
        checked = check_email(closed(response.text), titles=[p.title for p in picks], signoff=tenant.signoff)
        totals["in"] += response.input_tokens
        totals["out"] += response.output_tokens
        totals["seconds"] += seconds
        totals["ok"] += checked.ok
        verdict = "ok" if checked.ok else "; ".join(checked.problems)
        print(
            f"{user['FIRST_NAME']:<10} in={response.input_tokens:4d} out={response.output_tokens:4d} {seconds:5.1f}s  {verdict}"
        )
    n = args.emails
    print(
        f"\n{n} emails: {totals['seconds'] / n:.1f} s/email, {totals['out'] / totals['seconds']:.1f} output tokens/s "
        f"(end to end, prompt included), {totals['in'] / n:.0f} prompt tokens/email, {totals['ok']}/{n} passed validation"
    )


def _pick(item: dict, score: float) -> Pick:
    year = int(item["YEAR"]) if str(item["YEAR"]).isdigit() else None
    return Pick(item["ITEM_ID"], item["TITLE"], year, tuple(item["GENRES"].split("|")), item["PLOT"], score)


if __name__ == "__main__":
    main()
