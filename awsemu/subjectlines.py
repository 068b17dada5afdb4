"""A model's answer to a subject-variants prompt (campaigns.subjects): for the email inside `<email_for_subjects>`,
"exactly N" `<variant>…</variant>` lines, built from the email's first name and subject, deterministically."""

import hashlib
import re

OPEN, CLOSE = "<email_for_subjects>", "</email_for_subjects>"
_ASKED = re.compile(r"exactly (\d+) different subject lines")
ANGLES = (
    "{name}, {subject_lc}",
    "Tonight's picks for {name}",
    "{name}: three reasons to press play",
    "Made for your watchlist, {name}",
    "{name}, your weekend sorted",
    "Handpicked for {name}",
    "{name}, don't miss these",
)


def asks(prompt: str) -> bool:
    return OPEN in prompt and CLOSE in prompt


def answer(prompt: str) -> str:
    email = prompt.split(OPEN, 1)[1].split(CLOSE, 1)[0]
    asked = _ASKED.search(prompt)
    n = int(asked.group(1)) if asked else 3
    subject = (re.search(r"Subject:\s*(.*)", email) or [None, "picks for you"])[1].strip()
    name = (re.search(r"\b(?:Hi|Hello|Hey|Dear)\s+([\w'’-]+)", email) or [None, "there"])[1]
    start = int.from_bytes(hashlib.sha256(email.encode()).digest()[:2], "big") % len(ANGLES)
    lines = [
        ANGLES[(start + k) % len(ANGLES)].format(name=name, subject_lc=subject[:1].lower() + subject[1:])
        for k in range(n)
    ]
    return "\n".join(f"<variant>{line}</variant>" for line in lines)
