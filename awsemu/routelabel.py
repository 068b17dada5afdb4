"""A model's answer to a routing classifier's prompt (routing.dynamic): the request inside `<routing_request>` gets
`<label>simple</label>`, `<label>complex</label>` or `<label>unsure</label>`, decided, deterministically, by what a
small model would notice: other languages, tone and brand-voice instructions, many rules, length."""

import re

OPEN, CLOSE = "<routing_request>", "</routing_request>"
LANGUAGES = re.compile(
    r"\b(french|german|spanish|italian|portuguese|japanese|dutch|polish|swedish|korean|chinese|arabic|"
    r"bilingual|multilingual|translate|locale's language|their language|customer's language|keigo)\b", re.I
)  # fmt: skip
TONE = re.compile(
    r"\b(tone|voice|persona|register|witty|playful|formal|elegant|empathetic|humorous|luxury|sarcastic|"
    r"understated|whimsical|refined|style guide)\b", re.I
)  # fmt: skip
RULE_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.M)
CONSTRAINT = re.compile(r"\b(must|never|exactly|at most|at least|no more than|avoid|do not|don't|under \d+)\b", re.I)


def asks(prompt: str) -> bool:
    return OPEN in prompt and CLOSE in prompt


def answer(prompt: str) -> str:
    request = prompt.split(OPEN, 1)[1].split(CLOSE, 1)[0]
    score = 2 * bool(LANGUAGES.search(request))
    score += len(set(m.lower() for m in TONE.findall(request))) >= 2
    score += len(RULE_LINE.findall(request)) + len(re.findall(r"\b\d+\.\s", request)) >= 9
    score += len(CONSTRAINT.findall(request)) >= 7
    score += len(request) > 2400
    label = "complex" if score >= 2 else "simple" if score == 0 else "unsure"
    return f"<label>{label}</label>"
