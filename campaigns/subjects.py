"""Subject-line variants: a campaign with `subject_variants` of 2-5 gets that many candidate subjects per email,
written in one call per email on the "subject" route once its body is done, in a strict format
(`<variant>…</variant>` once per candidate) parsed leniently (case, spacing, quotes, duplicates). Each
candidate goes through the checks the body's subject passed (campaigns.validation.check_subject, and the tenant's
guardrail); one that fails is dropped, and the email's checks say why. An answer without usable tags, fewer than two
candidates left, a failed call or a budget refusal keeps the body's own subject, and the checks say why: variants
never fail a draft.

"pick": the reviewer picks one in review (the first is the default; GeneratedEmail.subject_pick records it);
"ab": each contact gets variant `ab_variant(campaign, contact, n)`, a hash of the ids, so a run retried or
regenerated puts the contact in the same arm and the arms are about even; the index is kept on the email
(`subject_variant`) so the reports can compare open and click rates per variant."""

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from campaigns.models import SUBJECT_MAX, EmailStatus, SubjectMode
from campaigns.prompting import clean_text
from campaigns.validation import check_subject
from routing.budget import Allowance, BudgetExceeded, budget_reserve, budget_settle, call_estimate
from routing.catalog import get_model
from routing.gateway import draft_screen, llm_invoke, llm_request, route_for, screens_drafts
from routing.policy import RouteRefused
from routing.seed import SUBJECT_TASK
from tenants.services import quota_month

SYSTEM = "You write email subject lines for a marketing team: short, specific, honest, no clickbait, no emoji."
_VARIANT = re.compile(r"<\s*variant\s*>(.*?)<\s*/\s*variant\s*>", re.DOTALL | re.IGNORECASE)
QUOTES = "\"'“”‘’«»"
DONE = (EmailStatus.DRAFT, EmailStatus.APPROVED)


def subject_prompt(*, subject: str, body: str, n: int) -> str:
    return (
        f"Write exactly {n} different subject lines for the email below, each under 80 characters, each a "
        f"different angle. Answer with exactly {n} lines in this format and nothing else:\n"
        + "\n".join("<variant>a subject line</variant>" for _ in range(n))
        + f"\n<email_for_subjects>\nSubject: {clean_text(subject, SUBJECT_MAX)}\n\n"
        f"{clean_text(body, 4000)}\n</email_for_subjects>"
    )


def parse_variants(text: str, n: int) -> tuple[list[str], str]:
    """Up to `n` distinct candidates from an answer, and "" or what was wrong with it (fewer than two usable
    candidates: none are kept)."""
    found, seen = [], set()
    for raw in _VARIANT.findall(text or ""):
        candidate = " ".join(raw.split()).strip(QUOTES + " ")
        candidate = re.sub(r"^(?:\d+[.)]|subject\s*:)\s*", "", candidate, flags=re.IGNORECASE).strip(QUOTES + " ")
        if not candidate or len(candidate) > SUBJECT_MAX or "<" in candidate or candidate.lower() in seen:
            continue
        seen.add(candidate.lower())
        found.append(candidate)
    found = found[:n]
    if len(found) < 2:
        return [], f"the answer had {len(found)} usable <variant> subject lines, not {n}"
    return found, "" if len(found) == n else f"the answer had {len(found)} usable subject lines of {n}"


def ab_variant(*, campaign_id: int, contact_id: int, n: int) -> int:
    """The contact's arm among `n` variants: stable for a campaign, independent of the order contacts come in."""
    digest = hashlib.sha256(f"subject-ab:{campaign_id}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


def subjects_write(drafts, *, run) -> None:
    """Give each finished draft of `drafts` its subject candidates (campaign.subject_variants > 1): one call per
    draft in a thread pool, drawing on one reservation in the tenant's budget. Each candidate must pass the checks
    the body's own subject passed (campaigns.validation.check_subject: length, titles that were not recommended,
    template residue; and the tenant's guardrail, inside the call or on each candidate as it screens drafts); one
    that fails is dropped and the draft's checks say why. Sets the draft's fields (subject_candidates,
    subject_variant, subject) and adds the calls to its usage and cost."""
    from campaigns.generation import GUARDRAIL_TASK, catalog_titles

    campaign, tenant = run.campaign, run.tenant
    n = campaign.subject_variants
    done = [d for d in drafts if d.fields.get("status") in DONE and d.fields.get("subject")]
    if n <= 1 or not done:
        return

    def note(draft, problem: str) -> None:
        draft.fields.setdefault("checks", []).append({"attempt": 0, "problem": f"subject variants: {problem}"[:500]})

    try:
        route = route_for(tenant=tenant, task=SUBJECT_TASK)
    except RouteRefused as exc:  # a plan misconfigured: the bodies are written and paid for, so they stay
        for draft in done:
            note(draft, f"no route: {exc.message}; the body's subject is kept")
        return
    others = catalog_titles(run)
    spec = get_model(route.model_key)
    requests = [llm_request(tenant, spec.model_id, SYSTEM,
                            subject_prompt(subject=d.fields["subject"], body=d.fields.get("body", ""), n=n),
                            max_tokens=route.max_tokens or spec.max_tokens, temperature=spec.temperature)
                for d in done]  # fmt: skip
    per_call = [call_estimate(spec, request) for request in requests]
    try:
        allowance = budget_reserve(tenant=tenant, wanted=sum(per_call), at_least=min(per_call))
    except BudgetExceeded as exc:
        allowance = Allowance(tenant.pk, quota_month(), tenant.budget_usd, refusal=exc.message)
    records = []

    def screened(draft, candidate: str) -> str:
        """ "" or why the tenant's guardrail refuses the candidate (a worker thread: no database)."""
        verdict, record, error = draft_screen(tenant=tenant, task=GUARDRAIL_TASK, text=candidate)
        records.append(record)
        draft.screens.append(record)
        draft.fields["cost_usd"] = draft.fields.get("cost_usd", 0) + record.cost_usd
        if error is not None:
            return f"guardrail screening failed: {error.message}"
        return "blocked by the tenant's Bedrock guardrail" if verdict.intervened else ""

    def write(pair) -> None:  # a worker thread: no database
        draft, request = pair
        response, record, error = llm_invoke(tenant=tenant, task=SUBJECT_TASK, route=route, request=request,
                                             allowance=allowance)  # fmt: skip
        records.append(record)
        draft.subjects.append(record)
        draft.fields["cost_usd"] = draft.fields.get("cost_usd", 0) + record.cost_usd
        if error is None and response.stop_reason == "guardrail_intervened":
            candidates, problem = [], "blocked by the tenant's Bedrock guardrail"
        else:
            candidates, problem = (
                ([], f"model call failed: {error.message}") if error else parse_variants(response.text, n)
            )
        kept = []
        for candidate in candidates:
            refused = "; ".join(check_subject(candidate, titles=draft.titles, others=others))
            if not refused and screens_drafts(tenant):
                refused = screened(draft, candidate)
            if refused:
                note(draft, f"dropped {candidate[:80]!r}: {refused}")
            else:
                kept.append(candidate)
        if candidates and len(kept) < 2:
            problem = f"{len(kept)} of the answer's subject lines passed the checks: the body's subject is kept"
            kept = []
        if problem:
            note(draft, problem)
        if not kept:
            return
        index = 0
        if campaign.subject_mode == SubjectMode.AB:
            index = ab_variant(campaign_id=campaign.pk, contact_id=draft.contact.pk, n=len(kept))
        draft.fields.update(subject_candidates=kept, subject_variant=index, subject=kept[index])

    try:
        with ThreadPoolExecutor(
            max_workers=min(settings.LLM_CONCURRENCY, len(done)), thread_name_prefix="subj"
        ) as pool:
            list(pool.map(write, zip(done, requests, strict=True)))
    finally:
        budget_settle(allowance, sum(record.cost_usd for record in records))
