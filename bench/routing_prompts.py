"""The labelled prompt set of bench/routing.py: tenant prompt templates rendered for contacts, in the shapes the
product uses (the default template with a marketer's campaign goal, free-text `<user>` blocks, `Name:` lines,
`<movie>` blocks holding a JSON list or `Title:` lines), each labelled by hand-written rules of RouteLabel's
definitions: simple (a short, standard email) or complex (another language, a detailed tone or brand voice, many
constraints, long-form). Deterministic (a seeded generator), written for this project; no data file.

    .venv/bin/python bench/routing_prompts.py [--dump]   # counts per label and shape, or every prompt as JSONL"""

import json
import random
import sys
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parent.parent
SEED = 1307

CONTACTS = [("Mara", 34, "f", "en-GB"), ("Tomás", 58, "m", "es-ES"), ("Ines", 27, "f", "pt-PT"),
            ("Kenji", 41, "m", "ja-JP"), ("Olu", 22, "m", "en-NG"), ("Birgit", 66, "f", "de-DE"),
            ("Ravi", 39, "m", "en-IN"), ("Claire", 45, "f", "fr-FR"), ("Sam", 31, "x", "en-US"),
            ("Lucia", 52, "f", "it-IT")]  # fmt: skip
MOVIES = [("The Lantern Keeper", 2019, ["Drama"], "A lighthouse keeper finds letters from a stranger in the fog."),
          ("Salt and Thunder", 2021, ["Adventure"], "Two sisters sail a leaking boat across a stormy strait."),
          ("Paper Orbit", 2016, ["Sci-Fi"], "A teenager builds a satellite out of cereal boxes and it works."),
          ("Midnight Bakery", 2022, ["Comedy", "Romance"], "A baker and a night guard trade recipes and secrets."),
          ("Quiet Harbour", 2014, ["Thriller"], "A harbour master notices one ship that never unloads."),
          ("Copper Fields", 2018, ["Western"], "A surveyor is hired to map land nobody wants mapped."),
          ("The Last Tram", 2020, ["Drama"], "Passengers on the final tram of the night tell their stories."),
          ("Glass Garden", 2023, ["Fantasy"], "A greenhouse grows flowers that remember what they hear."),
          ("Rooftop Chess", 2017, ["Family"], "A grandfather teaches the whole building to play chess."),
          ("Static Hearts", 2015, ["Romance"], "Two radio hosts fall for each other without ever meeting.")]  # fmt: skip
GENRES = ["Drama", "Comedy", "Sci-Fi", "Thriller", "Family", "Romance"]
SIGNOFF = "Ana from Acme Video"

# Simple: a short, standard email, however phrased (some with one mild style word).
SIMPLE = [
    "Write a short email telling the customer about the movies below.",
    "Quick email: say hello, recommend each film in a sentence, then sign off.",
    "Let the subscriber know which titles we think they will like this weekend.",
    "A few lines recommending the picks below. Nothing fancy.",
    "Email the customer our suggestions for tonight, one line per title.",
    "Write a warm little note suggesting these films.",
    "Recommend the movies below to the customer in a brief email with a subject line.",
    "Send a friendly heads-up about the new arrivals picked for this customer.",
    "Draft a two-paragraph email about the films we chose for them.",
    "Write our usual weekly picks email for this customer.",
    "Tell them why each of these movies suits them, briefly, and invite them to watch.",
    "A short, upbeat email about the titles below; greet them by first name.",
    "Write a simple recommendation email. Keep it under a minute to read.",
    "Email with this month's picks. Friendly, plain, short.",
    "Suggest the movies below for a cosy night in, in a short email.",
    "Write a casual email: hi, the picks, bye.",
    "Short promotional email for the recommended titles, subject plus body.",
    "Write a light, playful note about the films below.",  # one tone word: still a short, standard email
    "Recommend these titles in a short email and mention their favourite genre once.",
    "Write the standard newsletter email for the picks below.",
]
# Complex: another language, a detailed tone or brand voice, many constraints, or long-form.
LANGUAGE = [
    "Write the email in Spanish for customers in Spain and in English for everyone else.",
    "Write the whole email in the customer's language, taken from their locale, titles kept as they are.",
    "Write it in German with formal Sie address; the subject line in German too.",
    "Bilingual email: French first, then the same text in English below a divider.",
    "Write in Italian for Italian locales and in Portuguese for Portuguese ones, otherwise in English.",
    "Translate our standard picks email into Japanese, using polite forms throughout.",
    "Write the email in Dutch and add a one-line English summary at the end.",
    "Write it in the customer's native tongue as their locale shows, and localise the dates.",  # no keyword
]
VOICE = [
    "Use our brand voice: dry humour, confident, never pushy, and a formal register for customers over 60.",
    "Our persona is a witty film critic with an elegant, understated style; keep the tone refined.",
    "Tone: empathetic and calm, like a friend who works at the cinema; avoid hype; whimsical closing line.",
    "Write in the voice of our luxury concierge: formal, refined, evocative, no hard sell.",
    "Follow the style guide: humorous but never sarcastic, second person, playful puns on each title.",
    "Match the voice of a late-night radio host: warm, slow, poetic, with a witty sign-off line.",
    "Sound like a retro movie trailer narrator, dramatic and playful, but keep a formal greeting.",
    "Keep the brand's cheeky, irreverent personality but stay kind; each paragraph should feel handwritten.",
]
RULES = [
    "at most 120 words in the body", "never mention prices or discounts", "exactly one question in the email",
    "no emoji", "use British spelling", "avoid the words 'amazing' and 'awesome'", "end with a P.S. line",
    "do not use the customer's last name", "keep the subject under 45 characters", "mention each title twice",
    "each paragraph must name the genre", "no more than two sentences per paragraph", "include a call to action",
    "no superlatives", "write at a grade 6 reading level", "add an accessibility note about subtitles",
    "never use exclamation marks", "open with a hook about the weekend", "the subject must include the first name",
    "at least one sentence about the plot of each film",
]  # fmt: skip
LONG_FORM = [
    "Write a long-form editorial newsletter: an introduction, a section with a heading per film, a paragraph on "
    "their shared themes and a closing essay of at least 400 words.",
    "Write a detailed feature email comparing the films below, with a short history of each genre and a ranked "
    "verdict at the end.",
    "Write a magazine-style piece for the customer: a story that weaves all the picks into one evening, then a "
    "paragraph on each, then a reading list of similar films we carry.",
    "Write a thorough seasonal guide email: three sections (why now, the picks, how to watch), each several "
    "paragraphs long.",
    "Produce an in-depth review email covering plot, mood, pacing and who will love each film, about 600 words.",
]


def movie_block(rng, items, shape: str) -> str:
    if shape == "json":
        data = [{"title": t, "year": y, "genres": g} for t, y, g, _ in items]
        return f"<movie>{json.dumps(data, ensure_ascii=False)}</movie>"
    return "\n".join(f"<movie>\nTitle: {t}\nYear: {y}\nPlot: {p}\n</movie>" for t, y, _, p in items)


def user_block(rng, contact, shape: str) -> str:
    name, age, gender, locale = contact
    if shape == "free":
        notes = rng.choice(["likes slow dramas on Sundays", "watches with the kids", "rewatched three comedies",
                            "new subscriber", "prefers subtitles"])  # fmt: skip
        return f"<user>{name} is {age}, based in locale {locale}; {notes}.</user>"
    return f"<user>\nName: {name}\nAge: {age}\nGender: {gender}\nLocale: {locale}\n</user>"


def tenant_prompt(rng, instruction: str, contact, items) -> str:
    """A tenant-authored template rendered: instruction, contact, picks, sign-off (blocks in a varying order)."""
    user = user_block(rng, contact, rng.choice(["free", "lines"]))
    movies = movie_block(rng, items, rng.choice(["json", "lines"]))
    genre = f"<genre>{rng.choice(GENRES)}</genre>"
    signoff = f"<signoff>{SIGNOFF}</signoff>"
    if rng.random() < 0.5:
        return f"{instruction}\n\n{user}\n{genre}\n{movies}\n{signoff}"
    return f"{user}\n{movies}\n{signoff}\n\n{instruction}\nAnswer with <subject>…</subject> and <body>…</body>."


def default_prompt(template, instruction: str, contact, items) -> str:
    """The product's default template, the marketer's instruction as its campaign goal."""
    name, age, gender, locale = contact
    return template.render(
        brand="Acme Video", contact={"first_name": name, "age": age, "gender": gender, "locale": locale},
        favorite_genre=items[0][2][0], signoff=SIGNOFF, campaign_goal=instruction,
        items=[{"title": t, "year": y, "genres": g, "plot": p} for t, y, g, p in items],
    )  # fmt: skip


def instructions(rng) -> list[tuple[str, str, str]]:
    """(label, kind, instruction): every simple and complex instruction, rule lists drawn from the pool."""
    out = [("simple", "simple", text) for text in SIMPLE]
    out += [("complex", "language", text) for text in LANGUAGE]
    out += [("complex", "voice", text) for text in VOICE]
    out += [("complex", "long-form", text) for text in LONG_FORM]
    for _ in range(12):
        rules = rng.sample(RULES, rng.randint(9, 13))
        out.append(("complex", "rules", "Follow every rule:\n" + "\n".join(f"- {r}" for r in rules)))
    for _ in range(4):  # a few rules only: still a standard email
        rules = rng.sample(RULES, 3)
        out.append(("simple", "simple", "Short picks email. " + "; ".join(rules).capitalize() + "."))
    return out


def prompts() -> list[dict]:
    """About 250 prompts: each instruction rendered for several contacts and shapes; half or so of each label."""
    rng = random.Random(SEED)
    env = Environment(loader=FileSystemLoader(ROOT / "templates" / "prompts"), undefined=StrictUndefined)
    template = env.get_template("default_email.j2")
    out = []
    for label, kind, instruction in instructions(rng):
        copies = 5 if label == "simple" else 3
        for n in range(copies):
            contact, items = rng.choice(CONTACTS), rng.sample(MOVIES, rng.randint(2, 4))
            shape = "default" if n % 3 == 0 else "tenant"
            text = (default_prompt(template, instruction, contact, items) if shape == "default"
                    else tenant_prompt(rng, instruction, contact, items))  # fmt: skip
            out.append({"label": label, "kind": kind, "shape": shape, "prompt": text})
    return out


if __name__ == "__main__":
    rows = prompts()
    if "--dump" in sys.argv:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        from collections import Counter

        print(len(rows), "prompts", sum(len(r["prompt"]) for r in rows), "chars")
        print(Counter((r["label"], r["kind"], r["shape"]) for r in rows))
