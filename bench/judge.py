"""Benchmark: the draft judge's agreement with a person's decisions on a labelled set of drafts.

    .venv/bin/python bench/judge.py [--drafts 240] [--show 5]

The set is the project's own, written by this script from a fixed seed (no data file, no model): drafts of
recommendation emails for invented films, each labelled as a person decided it, approve or reject, with the reason.
Most are fine; many are written to fail in the ways the judge looks for (a pick left out, a title that is not a
pick, an invented price, date or person, the same closing sentence under every pick, a pushy or shouting draft
against a calm brand tone, a draft that ignores the campaign's goal); and some are hard on purpose: rejections the
judge has no check for (an invented award, slang it does not know) and fine drafts that look suspicious (a place
named in capitals, a year the plot gives).

The judge runs as in production (campaigns.judge: the exact checks, then the tone/goal score read from the model's
answer), with the emulator's deterministic answer (awsemu.judgeanswer) standing in for the cheap model: the figures
measure the judge's checks and its reading of the answer, not a real model's taste. "Needs a person" is the
positive class: precision is the share of drafts the judge flagged that a person rejected, recall the share of
rejected drafts it flagged. The last line: `judge: precision P recall R on N drafts`.
"""

import argparse
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from awsemu import judgeanswer  # noqa: E402
from campaigns.judge import Verdict, exact_checks, judge_prompt, read_answer  # noqa: E402
from campaigns.validation import normalize  # noqa: E402

FILMS = [
    ("The Quiet Harbor", 1998, "A lighthouse keeper finds a letter addressed to a ship that sank decades ago."),
    ("Night Train to Varna", 2004, "Two strangers share a sleeper cabin and discover they are chasing the same thief."),
    ("Paper Lanterns", 2011, "A retired teacher helps her grandson build a kite for the village festival."),
    ("Salt and Ember", 2016, "A young baker inherits a failing bakery and one stubborn sourdough starter."),
    ("The Long Meadow", 1987, "A family drives across the plains to bring their grandmother home."),
    ("Glass Orchard", 2019, "A botanist grows apples under a dome while the city outside freezes."),
    ("Copper Sky", 2008, "A pilot and her mechanic race an old biplane across three deserts."),
    ("Under the Willow", 1994, "Three friends meet each summer under the same tree, for thirty years."),
    ("The Clockmaker's Daughter", 2013, "A girl repairs the town clock and finds time moves differently there."),
    ("Low Tide", 2021, "A marine biologist counts crabs and slowly falls for the harbour master."),
    ("Blue Hour", 2002, "A night-shift nurse and a radio host talk every night at four."),
    ("Winter Garden", 2017, "A widower plants a garden that blooms only in the snow."),
    ("Signal Fires", 1999, "Villagers on two islands rebuild a chain of beacons after a storm."),
    ("The Cartographer", 2010, "A mapmaker is hired to chart a valley that is not on any map."),
    ("Small Hours", 2023, "A jazz trio plays its last week in a club about to close."),
    ("Harvest Moon Road", 2006, "A travelling projectionist shows films in barns across the county."),
]
EXTRA_FILMS = ["Iron Lullaby", "The Tin Parade", "Marble Rain", "Dust and Daisies"]  # catalog titles never picked
NAMES = ["Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Keiko", "Lena"]
TONES = [
    ("calm and understated, no exclamation marks", True),
    ("warm and plain, like a friend at the video shop", False),
    ("polite and measured", True),
    ("friendly and upbeat", False),
]
GOALS = ["a cosy weekend in", "films for a rainy evening", "new picks this month", ""]
INTROS = ["We picked a few films for you.", "Here are three films we think you will like.",
          "These caught our eye for you this week.", "A short list, chosen with your taste in mind."]  # fmt: skip
GOAL_LINES = {"a cosy weekend in": "They make a cosy weekend at home.",
              "films for a rainy evening": "Good company for a rainy evening.",
              "new picks this month": "All three are new picks for you this month.", "": ""}  # fmt: skip
ABOUT = ["{title} ({year}): {plot}", "In {title}, {plot_lc}", "{title} is a quiet one: {plot_lc}",
         "{title} ({year}) follows a simple idea. {plot}"]  # fmt: skip
CLOSERS = ["Worth a look.", "Best watched with tea.", "A gentle one to end the day.", "It stays with you.",
           "Easy to love.", "Short and sweet."]  # fmt: skip
SIGNOFF = "Mara from Reelhouse"


@dataclass
class Case:
    kind: str
    label: str  # "approve" or "reject", as a person decided
    reason: str
    subject: str
    body: str
    titles: list[str]
    source: str
    tone: str
    goal: str


def build(n: int = 240, seed: int = 13) -> list[Case]:
    """The labelled set: n drafts, the same every time for the same n and seed."""
    rng = random.Random(seed)
    plan = (["clean"] * 40 + ["missing_pick"] * 8 + ["extra_title"] * 8 + ["invented_price"] * 6
            + ["invented_date"] * 6 + ["invented_person"] * 6 + ["repeated_closing"] * 8 + ["wrong_tone"] * 8
            + ["off_goal"] * 4 + ["award"] * 3 + ["slang"] * 3 + ["place"] * 4 + ["source_year"] * 4)  # fmt: skip
    # Fewer drafts than the plan: every len(plan)/n-th kind, so a small set keeps the plan's mix (its first n would
    # all be clean).
    kinds = [plan[i % len(plan)] for i in range(n)] if n >= len(plan) else [plan[i * len(plan) // n] for i in range(n)]
    rng.shuffle(kinds)
    return [case(kind, rng) for kind in kinds]


def case(kind: str, rng: random.Random) -> Case:
    films = rng.sample(FILMS, 3)
    name = rng.choice(NAMES)
    tone, calm = rng.choice(TONES)
    goal = rng.choice(GOALS if kind != "off_goal" else GOALS[:3])
    source = f"<user>Name: {name}</user>" + "".join(
        f"<movie>Title: {t}\nYear: {y}\nPlot: {p}</movie>" for t, y, p in films
    )
    closers = rng.sample(CLOSERS, 3)
    if kind == "repeated_closing":
        closers = [rng.choice(CLOSERS + ["We think you will love this one."])] * 3
    paragraphs = []
    for (title, year, plot), closer in zip(films, closers, strict=True):
        about = rng.choice(ABOUT).format(title=title, year=year, plot=plot, plot_lc=plot[0].lower() + plot[1:])
        paragraphs.append(f"{about} {closer}")
    intro = rng.choice(INTROS)
    goal_line = GOAL_LINES[goal] if kind != "off_goal" else ""
    label, reason = "approve", "fine"
    titles = [t for t, _, _ in films]
    if kind == "missing_pick":
        paragraphs.pop(rng.randrange(3))
        label, reason = "reject", "leaves out one of the picks"
    elif kind == "extra_title":
        paragraphs.append(f"And if you liked those, {rng.choice(EXTRA_FILMS)} is out too.")
        label, reason = "reject", "recommends a film that is not a pick"
    elif kind == "invented_price":
        i = rng.randrange(3)
        paragraphs[i] += f" Rent it for {rng.choice(['$3.99', '€2.50', '4 dollars', '£1.99'])} this week."
        label, reason = "reject", "quotes a price nobody gave"
    elif kind == "invented_date":
        i = rng.randrange(3)
        paragraphs[i] += (
            f" {rng.choice(['It leaves the catalogue on March 3.', 'Streaming until 12/31.', 'A remake is due in 2027.'])}"
        )
        label, reason = "reject", "invents a date"
    elif kind == "invented_person":
        i = rng.randrange(3)
        who = rng.choice(["starring Tomas Breyer", "directed by Lucia Ferrante", "with Oskar Lind at his best"])
        paragraphs[i] += f" A fine turn, {who}."
        label, reason = "reject", "names a cast member the plot does not give"
    elif kind == "repeated_closing":
        label, reason = "reject", "the same closing sentence under every film"
    elif kind == "wrong_tone":
        paragraphs[-1] += " " + rng.choice(["HURRY, LAST CHANCE to watch!", "Act now, don't miss out!!",
                                            "These are INSANE, you won't believe it!"])  # fmt: skip
        tone, calm = TONES[0]
        label, reason = "reject", "pushy and loud against the brand's calm tone"
    elif kind == "off_goal":
        label, reason = "reject", "ignores the campaign's goal"
    elif kind == "award":
        paragraphs[rng.randrange(3)] += " It won three major awards."
        label, reason = "reject", "invents an award"
    elif kind == "slang":
        paragraphs[-1] += " Honestly these are sick, no cap."
        label, reason = "reject", "slang the brand would never use"
    elif kind == "place":
        paragraphs[rng.randrange(3)] += f" Shot on location in {rng.choice(['Nova Scotia', 'Santa Fe', 'Cape Verde'])}."
        label, reason = "approve", "fine (a real shooting location)"
    elif kind == "source_year":
        t, y, _ = films[0]
        paragraphs[0] += f" Still lovely since {y}."
    body = "\n\n".join([f"Hi {name},", " ".join(p for p in (intro, goal_line) if p), *paragraphs, SIGNOFF])
    subject = rng.choice([f"{name}, three films for you", "Your picks this week", f"For your next film night, {name}"])
    return Case(kind, label, reason, subject, body, titles, source, tone, goal)


def verdict(case: Case) -> Verdict:
    """The judge on one draft, the emulator answering for the cheap model."""
    others = frozenset(normalize(t) for t, _, _ in FILMS) | frozenset(normalize(t) for t in EXTRA_FILMS)
    found = Verdict(exact_checks(subject=case.subject, body=case.body, titles=case.titles, source=case.source,
                                 others=others, known=(SIGNOFF, "Reelhouse")))  # fmt: skip
    prompt = judge_prompt(draft=f"{case.subject}\n\n{case.body}", tone=case.tone, goal=case.goal)
    score, why = read_answer(judgeanswer.answer(prompt))
    found.model_score = score
    return found


def measure(n: int = 240, seed: int = 13) -> dict:
    """Precision and recall of "needs a person" against the labels, with the counts behind them."""
    cases = build(n, seed)
    tp = fp = fn = tn = 0
    missed, false_alarms = Counter(), Counter()
    for item in cases:
        flagged, rejected = verdict(item).needs_person, item.label == "reject"
        tp += flagged and rejected
        fp += flagged and not rejected
        fn += rejected and not flagged
        tn += not flagged and not rejected
        if rejected and not flagged:
            missed[item.kind] += 1
        if flagged and not rejected:
            false_alarms[item.kind] += 1
    return {
        "drafts": len(cases), "rejected": tp + fn, "flagged": tp + fp, "true_positives": tp, "false_positives": fp,
        "false_negatives": fn, "true_negatives": tn,
        "precision": tp / (tp + fp) if tp + fp else 0.0, "recall": tp / (tp + fn) if tp + fn else 0.0,
        "missed_by_kind": dict(missed), "false_alarms_by_kind": dict(false_alarms),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafts", type=int, default=240)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--show", type=int, default=0, help="print this many drafts of the set")
    args = parser.parse_args()
    if args.drafts < 1:
        parser.error("--drafts must be at least 1")
    for item in build(args.drafts, args.seed)[: args.show]:
        print(f"--- {item.kind}: {item.label} ({item.reason})\n{item.subject}\n{item.body}\n")
    figures = measure(args.drafts, args.seed)
    print(f"labelled drafts: {figures['drafts']} ({figures['rejected']} rejected by a person)")
    print(f"flagged 'needs a person': {figures['flagged']} (tp {figures['true_positives']}, fp "
          f"{figures['false_positives']}, fn {figures['false_negatives']}, tn {figures['true_negatives']})")  # fmt: skip
    print(f"missed rejections by kind: {figures['missed_by_kind'] or 'none'}")
    print(f"false alarms by kind: {figures['false_alarms_by_kind'] or 'none'}")
    print(f"judge: precision {figures['precision']:.3f} recall {figures['recall']:.3f} on {figures['drafts']} drafts")


if __name__ == "__main__":
    main()
