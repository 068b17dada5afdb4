"""A model's answer to a plot-shortening prompt (campaigns.plots): the text inside `<shorten>` gets
`<short>…</short>`, its first sentences up to the length asked for ("at most N characters"), deterministically."""

import re

OPEN, CLOSE = "<shorten>", "</shorten>"
_ASKED = re.compile(r"at most (\d+) characters")


def asks(prompt: str) -> bool:
    return OPEN in prompt and CLOSE in prompt


def answer(prompt: str) -> str:
    text = " ".join(prompt.split(OPEN, 1)[1].split(CLOSE, 1)[0].split())
    asked = _ASKED.search(prompt)
    limit = int(asked.group(1)) if asked else 300
    short = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if short and len(short) + 1 + len(sentence) > limit:
            break
        short = f"{short} {sentence}".strip()
    if len(short) > limit:
        short = short[:limit].rsplit(" ", 1)[0] + "."
    return f"<short>{short}</short>"
