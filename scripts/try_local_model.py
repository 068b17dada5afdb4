"""Write three sample emails with the local model and print them with their speed and a quick check.

Used to tune templates/prompts/ and the thread count: .venv/bin/python scripts/try_local_model.py --threads 2
"""

import argparse
import re
import sys
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from routing.localmodel import DEFAULT_MODEL_PATH, ensure_model  # noqa: E402
from routing.providers.local import LocalProvider  # noqa: E402
from routing.types import LLMRequest  # noqa: E402

BRAND = {"brand": "Streamly", "sender_name": "Sam", "signoff": "Sam from Streamly", "campaign_goal": ""}

CONTACTS = [
    (
        {"first_name": "Maria", "last_name": "Lopez", "age": 34, "gender": "female", "locale": "es_ES"},
        "Comedy",
        [
            ("Paper Crowns", 2019, ["Comedy", "Crime"], "Two hapless cousins try to pawn a fake royal crown."),
            ("The Wedding Interpreter", 2021, ["Comedy", "Romance"], "A translator mistranslates a wedding."),
            ("Mild Salsa", 2016, ["Comedy"], "A food critic who hates spice inherits a taco truck."),
        ],
    ),
    (
        {"first_name": "Kenji", "last_name": "Sato", "age": 52, "gender": "male", "locale": "en_US"},
        "Sci-Fi",
        [
            ("Orbit of Glass", 2018, ["Sci-Fi", "Drama"], "A repair crew finds a cracked station full of letters."),
            ("Second Moon Harvest", 2022, ["Sci-Fi"], "Farmers on a colony race to save crops from a dimming sun."),
            ("The Quiet Relay", 2014, ["Sci-Fi", "Thriller"], "A signal operator hears her own voice from 1990."),
        ],
    ),
    (
        {"first_name": "Aisha", "last_name": "Bello", "age": 23, "gender": "", "locale": "en_GB"},
        "",
        [
            ("Copper Street: Part II", 2020, ["Drama", "Crime"], "A retired detective returns to one last case."),
            ("Lanterns Over Lagos", 2023, ["Romance", "Drama"], "Two rival DJs fall for each other."),
            ("Hollow Pines", 2017, ["Horror"], "Campers find every trail leads back to the same cabin."),
        ],
    ),
]


def prompt_context(contact: dict, genre: str, movies: list[tuple]) -> dict:
    items = [{"title": t, "year": y, "genres": g, "plot": p} for t, y, g, p in movies]
    return {"contact": contact, "favorite_genre": genre, "items": items, **BRAND}


def render(context: dict) -> tuple[str, str]:
    # The same sandbox options as campaigns.prompting, so what we tune here is what production sends.
    env = SandboxedEnvironment(
        loader=FileSystemLoader(REPO / "templates"), autoescape=False, undefined=StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    system = env.get_template("prompts/default_system.txt").render(context)
    return system, env.get_template("prompts/default_email.j2").render(context)


def problems(text: str, context: dict) -> list[str]:
    """What the lead's validator would reject, roughly: tags, titles, sign-off, placeholders."""
    found = []
    if not re.search(r"<subject>.+?</subject>", text, re.S) or "<body>" not in text:
        found.append("tags")
    missing = [i["title"] for i in context["items"] if i["title"].casefold() not in text.casefold()]
    if missing:
        found.append("titles missing: " + "; ".join(missing))
    if context["signoff"] not in text[-len(context["signoff"]) - 40 :]:
        found.append("sign-off")
    if re.search(r"\[[^\]]*\]", text):
        found.append("placeholder")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path", default=str(DEFAULT_MODEL_PATH))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=0.4)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show-prompt", action="store_true")
    args = parser.parse_args()

    provider = LocalProvider(model_path=str(ensure_model(args.model_path)), n_threads=args.threads, seed=args.seed)
    passed = 0
    for contact, genre, movies in CONTACTS:
        context = prompt_context(contact, genre, movies)
        system, prompt = render(context)
        if args.show_prompt:
            print(f"--- system\n{system}\n--- prompt\n{prompt}")
        request = LLMRequest("local", system, prompt, max_tokens=args.max_tokens, temperature=args.temperature,
                             top_p=args.top_p, stop=("</body>",))  # fmt: skip
        response = provider.converse(request)
        text = response.text + ("\n</body>" if response.stop_reason == "end_turn" else "")
        seconds = response.latency_ms / 1000
        found = problems(text, context)
        passed += not found
        print(f"=== {contact['first_name']}: {response.input_tokens} tokens in, {response.output_tokens} out, "
              f"{seconds:.1f} s, {response.output_tokens / seconds:.1f} out tokens/s, "
              f"stop={response.stop_reason}, problems={found or 'none'}")  # fmt: skip
        print(text, flush=True)
    print(f"=== {passed}/{len(CONTACTS)} emails passed the checks")


if __name__ == "__main__":
    main()
