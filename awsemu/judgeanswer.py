"""A model's answer to the draft judge's prompt (campaigns.judge): the draft inside `<judge_request>` gets
`<score>N</score><reasons>…</reasons>`, decided, deterministically, by what a small model would notice about tone
and goal: shouting, pushy or slangy wording, exclamation marks against a calm tone, and a goal the draft never
speaks to."""

import re

OPEN, CLOSE = "<judge_request>", "</judge_request>"
CALM = re.compile(r"\b(calm|formal|understated|plain|quiet|elegant|refined|no exclamation|measured|polite)\b", re.I)
PUSHY = re.compile(
    r"\b(act now|buy now|don't miss|do not miss|last chance|hurry|limited time|once in a lifetime|best ever|"
    r"insane|mind-blowing|you won't believe|order now|click now)\b", re.I
)  # fmt: skip
SLANG = re.compile(r"\b(omg|lol|gonna|wanna|dude|totally|epic|lit|bruh|yolo)\b", re.I)
SHOUT = re.compile(r"\b[A-Z]{3,}\b")
STOPWORDS = {"the", "and", "for", "with", "your", "this", "that", "from", "into", "their", "about", "picks", "pick"}


def asks(prompt: str) -> bool:
    return OPEN in prompt and CLOSE in prompt


def _block(tag: str, text: str) -> str:
    found = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return found.group(1) if found else ""


def answer(prompt: str) -> str:
    request = prompt.split(OPEN, 1)[1].split(CLOSE, 1)[0]
    tone, goal, draft = _block("tone", request), _block("goal", request), _block("draft", request)
    score, reasons = 9, []
    if len(SHOUT.findall(draft)) >= 2:
        score -= 4
        reasons.append("shouts in capitals")
    if PUSHY.search(draft):
        score -= 4
        reasons.append("pushy sales wording")
    if SLANG.search(draft):
        score -= 3
        reasons.append("slang")
    if CALM.search(tone) and draft.count("!") >= 1:
        score -= 3
        reasons.append("exclamation marks against a calm tone")
    elif draft.count("!") >= 4:
        score -= 2
        reasons.append("too many exclamation marks")
    words = {w for w in re.findall(r"[a-z]{4,}", goal.lower()) if w not in STOPWORDS}
    if words and not any(re.search(rf"\b{re.escape(w[:5])}", draft.lower()) for w in words):
        score -= 3
        reasons.append("does not speak to the campaign's goal")
    score = max(0, min(10, score))
    return f"<score>{score}</score><reasons>{'; '.join(reasons) or 'matches the tone and the goal'}</reasons>"
