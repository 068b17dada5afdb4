"""Bedrock guardrails, as `ApplyGuardrail` and Converse's `guardrailConfig` use them: denied words (blocked)
and e-mail addresses (anonymized or blocked). Define them with `GuardrailStore.define`; an unknown guardrail
or version is a ResourceNotFoundException, as on AWS."""

import math
import re
import threading
from dataclasses import dataclass

from awsemu.wire import AwsError

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
CHARS_PER_UNIT = 1000  # guardrails bill text in units of up to 1,000 characters
SOURCES = ("INPUT", "OUTPUT")


@dataclass(frozen=True)
class Guardrail:
    guardrail_id: str
    versions: tuple[str, ...]
    words: tuple[str, ...] = ()
    emails: str = ""  # "", "ANONYMIZE" or "BLOCK"
    blocked_input: str = "Sorry, the model cannot answer this question."
    blocked_output: str = "Sorry, the model cannot answer this question."


@dataclass(frozen=True)
class Verdict:
    intervened: bool
    blocked: bool
    text: str  # what the caller may show: the blocked message, the anonymized text, or the text unchanged
    assessment: dict
    units: int


class GuardrailStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._guardrails: dict[str, Guardrail] = {}

    def clear(self) -> None:
        with self._lock:
            self._guardrails.clear()

    def define(self, guardrail_id: str, *, words=(), emails: str = "", version: str = "1", **messages) -> None:
        if emails not in ("", "ANONYMIZE", "BLOCK"):
            raise ValueError("emails must be '', 'ANONYMIZE' or 'BLOCK'")
        guardrail = Guardrail(guardrail_id, ("DRAFT", version), tuple(words), emails, **messages)
        with self._lock:
            self._guardrails[guardrail_id] = guardrail

    def get(self, identifier: str, version: str) -> Guardrail:
        guardrail_id = identifier.rsplit("/", 1)[-1]  # an id, or its ARN
        with self._lock:
            guardrail = self._guardrails.get(guardrail_id)
        if guardrail is None or str(version) not in guardrail.versions:
            raise AwsError("ResourceNotFoundException", 404, f"The guardrail {identifier} version {version} was "
                           "not found.")  # fmt: skip
        return guardrail


def assess(guardrail: Guardrail, text: str, source: str) -> Verdict:
    words = [w for w in guardrail.words if re.search(rf"\b{re.escape(w)}\b", text, flags=re.IGNORECASE)]
    emails = EMAIL.findall(text) if guardrail.emails else []
    blocked = bool(words) or (bool(emails) and guardrail.emails == "BLOCK")
    assessment = {}
    if guardrail.words:
        found = [{"match": w, "action": "BLOCKED", "detected": True} for w in words]
        assessment["wordPolicy"] = {"customWords": found, "managedWordLists": []}
    if guardrail.emails:
        action = "BLOCKED" if guardrail.emails == "BLOCK" else "ANONYMIZED"
        found = [{"match": e, "type": "EMAIL", "action": action, "detected": True} for e in emails]
        assessment["sensitiveInformationPolicy"] = {"piiEntities": found, "regexes": []}
    if blocked:
        shown = guardrail.blocked_input if source == "INPUT" else guardrail.blocked_output
    else:
        shown = EMAIL.sub("{EMAIL}", text) if emails else text
    return Verdict(bool(words or emails), blocked, shown, assessment, math.ceil(len(text) / CHARS_PER_UNIT))


def apply_reply(guardrail: Guardrail, texts: list[str], source: str, output_scope: str) -> dict:
    """The ApplyGuardrail reply for the text blocks of one request."""
    verdicts = [assess(guardrail, text, source) for text in texts]
    intervened, blocked = any(v.intervened for v in verdicts), any(v.blocked for v in verdicts)
    if blocked:
        outputs = [{"text": next(v.text for v in verdicts if v.blocked)}]
    elif intervened or output_scope == "FULL":
        outputs = [{"text": v.text} for v in verdicts]
    else:
        outputs = []
    units = sum(v.units for v in verdicts)
    return {
        "usage": {
            "topicPolicyUnits": 0,
            "contentPolicyUnits": 0,
            "contextualGroundingPolicyUnits": 0,
            "wordPolicyUnits": units if guardrail.words else 0,
            "sensitiveInformationPolicyUnits": units if guardrail.emails else 0,
            "sensitiveInformationPolicyFreeUnits": 0,
        },  # fmt: skip
        "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
        **({"actionReason": "Guardrail blocked." if blocked else "Guardrail masked."} if intervened else {}),
        "outputs": outputs,
        "assessments": [v.assessment for v in verdicts],
    }
