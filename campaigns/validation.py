"""Checks a model's answer before it becomes a draft: it parses into subject and body, names every
recommended title, and carries no template residue. Pure functions, no database."""

import re
import unicodedata
from dataclasses import dataclass

SUBJECT_LIMITS = (3, 200)
BODY_LIMITS = (80, 6000)
_SUBJECT_TAG = re.compile(r"<subject>\s*(.*?)\s*</subject>", re.S | re.I)
_BODY_TAG = re.compile(r"<body>\s*(.*?)\s*(?:</body>|$)", re.S | re.I)
_SUBJECT_LINE = re.compile(r"^\s*\**subject\**\s*:\s*(.+)$", re.I | re.M)
_RESIDUE = re.compile(
    r"\[\s*(your|recipient|customer|first|last|company|brand|name|insert)[^\]]*\]|\{\{|\}\}|\{%|%\}"
    r"|</?\s*(user|movie|genre|signoff|subject|body|email)\s*>",
    re.I,
)


@dataclass(frozen=True)
class CheckedEmail:
    subject: str
    body: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_email(text: str) -> tuple[str, str]:
    """Accept <subject>/<body> tags, or a 'Subject:' line followed by the body."""
    subject_match, body_match = _SUBJECT_TAG.search(text), _BODY_TAG.search(text)
    if subject_match and body_match:
        return _strip(subject_match.group(1)), _strip(body_match.group(1))
    line = _SUBJECT_LINE.search(text)
    if line:
        rest = text[line.end() :]
        return _strip(line.group(1)), _strip(re.sub(r"</?\s*(email|body)\s*>", "", rest, flags=re.I))
    if subject_match:
        return _strip(subject_match.group(1)), _strip(text[subject_match.end() :])
    return "", _strip(text)


def _strip(value: str) -> str:
    # Small models wrap answers in code fences or bold markers; neither belongs in an email.
    return value.strip().strip("`").strip().strip('*"').strip()


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def invented_titles(text: str, *, titles: list[str], others: frozenset[str]) -> list[str]:
    """Catalog titles (normalized, two words or more) that the text names although they were not recommended."""
    said = f" {normalize(text)} "
    for title in titles:  # a recommended "Toy Story 2" must not count as naming "Toy Story"
        said = said.replace(f" {normalize(title)} ", "  ")
    words = said.split()
    found = set()
    for size in range(2, 9):
        for start in range(len(words) - size + 1):
            phrase = " ".join(words[start : start + size])
            if phrase in others:
                found.add(phrase)
    return sorted(found)


def _subject_length(subject: str) -> str:
    return f"subject must be {SUBJECT_LIMITS[0]}-{SUBJECT_LIMITS[1]} characters, was {len(subject)}"


def check_subject(subject: str, *, titles: list[str], others: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """What check_email would refuse in this subject line on its own (its length, titles that were not recommended,
    template residue): the checks a subject candidate must pass to replace the email's subject."""
    problems = []
    if not SUBJECT_LIMITS[0] <= len(subject) <= SUBJECT_LIMITS[1]:
        problems.append(_subject_length(subject))
    invented = invented_titles(subject, titles=titles, others=others) if others else []
    if invented:
        problems.append("names titles that were not recommended: " + "; ".join(invented))
    residue = _RESIDUE.search(subject)
    if residue:
        problems.append(f"contains template residue {residue.group(0)!r}")
    return tuple(problems)


def check_email(
    text: str, *, titles: list[str], signoff: str = "", others: frozenset[str] = frozenset()
) -> CheckedEmail:
    """`others`: the catalog's normalized titles, to refuse picks the model presents but we did not recommend."""
    subject, body = parse_email(text)
    problems = []
    if not SUBJECT_LIMITS[0] <= len(subject) <= SUBJECT_LIMITS[1]:
        problems.append(
            "missing subject: put the subject line inside <subject></subject>"
            if not subject
            else _subject_length(subject)
        )
    if not BODY_LIMITS[0] <= len(body) <= BODY_LIMITS[1]:
        problems.append(f"body must be {BODY_LIMITS[0]}-{BODY_LIMITS[1]} characters, was {len(body)}")
    said = normalize(f"{subject} {body}")
    missing = [t for t in titles if normalize(t) not in said]
    if missing:
        problems.append("does not mention: " + "; ".join(missing))
    invented = invented_titles(f"{subject} {body}", titles=titles, others=others) if others else []
    if invented:
        problems.append("names titles that were not recommended: " + "; ".join(invented))
    residue = _RESIDUE.search(f"{subject}\n{body}")
    if residue:
        problems.append(f"contains template residue {residue.group(0)!r}")
    if signoff and body and not problems and normalize(signoff) not in normalize(body[-len(signoff) * 3 :]):
        body = f"{body.rstrip()}\n\n{signoff}"  # a missing sign-off is ours to add, not a reason to regenerate
    return CheckedEmail(subject, body, tuple(problems))
