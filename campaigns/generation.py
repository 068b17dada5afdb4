"""Writing a run's emails: picks → prompt → model → validation → draft, many contacts at a time.

A chunk task prepares every prompt, runs the model calls in a bounded thread pool (they wait on the network,
so threads add throughput on two cores), then stores the usage records and emails in bulk. Rows are unique
per (run, contact), so a retried or restarted chunk only writes what is missing. A Draft is one contact's email
in the making, from its picks to the email stored (or the reason it failed)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from campaigns.plots import picks_shortened
from campaigns.profiling import stage
from campaigns.prompting import TemplateProblem, default_source, prompt_context, render
from campaigns.runs import run_refresh
from campaigns.subjects import subjects_write
from campaigns.validation import check_email, normalize
from datasets.models import Contact, Item
from recommendations.base import RecommendationOptions
from recommendations.services import favorite_genres, recommender_for
from routing.budget import Allowance, BudgetExceeded, budget_reserve, budget_settle, call_estimate
from routing.catalog import ModelSpec, get_model
from routing.dynamic import decision_stamp, route_prompt
from routing.errors import ProviderError
from routing.gateway import draft_screen, llm_invoke, llm_request, route_for, screens_drafts
from routing.models import LLMCall
from routing.types import LLMRequest, LLMResponse
from tenants.services import quota_month
from webhooks.events import emails_generated

TITLES_FRESH_SECONDS, TITLES_KEPT = 60, 4  # catalog_titles: how long a run's read holds, and for how many runs
_titles: dict[tuple[int, int], tuple[float, frozenset[str]]] = {}  # (tenant, run) → (read at, titles)
_titles_lock = threading.Lock()  # the demo writes from a thread of its own
STORE_BATCH = 1000  # rows per INSERT when a batch run's slice is stored at once
ANSWER_STOP = ("</body>",)
GUARDRAIL_TASK = "guardrail_screen"  # the usage records of draft screenings


@dataclass(frozen=True)
class Prompts:
    system: str
    body: str


def run_prompts(campaign: Campaign) -> Prompts:
    template = campaign.template
    system = template.system if template and template.system.strip() else default_source("default_system.txt")
    body = template.body if template else default_source("default_email.j2")
    return Prompts(system, body)


@dataclass
class Draft:
    """One contact's email in the making."""

    contact: Contact
    fields: dict
    titles: list[str] = field(default_factory=list)
    system: str = ""
    prompt: str = ""
    calls: list[LLMCall] = field(default_factory=list)  # the model's, one per attempt
    screens: list[LLMCall] = field(default_factory=list)  # the guardrail's, one per draft it screened
    routing: list[LLMCall] = field(default_factory=list)  # dynamic routing's own (classifier, embeddings)
    subjects: list[LLMCall] = field(default_factory=list)  # the subject variants' (campaigns.subjects)
    reason: str = ""  # what was wrong with the last answer
    feedback: str = ""  # what the next attempt is told about it
    problems: list[dict] = field(default_factory=list)  # every answer refused, and why: the review shows them
    stored: bool = False  # an email that exists already (being regenerated): only its usage is stored

    @property
    def usage_records(self) -> list[LLMCall]:
        return self.calls + self.screens + self.routing + self.subjects

    @property
    def ready(self) -> bool:
        """Still to be written: neither stored as a draft nor failed."""
        return "status" not in self.fields


def run_generate_chunk(*, run: CampaignRun, contact_ids: list[int]) -> int:
    """Write one email per contact that has none yet in this run; safe to retry. Returns emails written."""
    tenant, campaign = run.tenant, run.campaign
    if run.status != RunStatus.RUNNING:
        return 0
    contacts = contacts_pending(run=run, contact_ids=contact_ids)
    if not contacts:
        return 0
    route = route_for(tenant=tenant, task=campaign.task)
    drafts = drafts_prepare(run=run, contacts=contacts, route=route)
    drafts_write(drafts, run=run, route=route)
    with stage("subjects"):
        subjects_write(drafts, run=run)
    with stage("store"):
        drafts_store(run=run, drafts=drafts)
    run_refresh(run=run)
    return len(drafts)


def drafts_store(*, run: CampaignRun, drafts: list[Draft]) -> None:
    """Store drafts as the run's emails, and the usage records of every call made for them, in bulk: the one
    place every path (chunks, failed chunks, batch records, regeneration) stores what it wrote. An email that
    already exists is left alone (a chunk retried while its first attempt was still running); its usage is kept,
    since those calls were made and billed."""
    tenant = run.tenant
    records = [record for draft in drafts for record in draft.usage_records]
    for record in records:
        record.campaign_id, record.run_id = run.campaign_id, run.pk
    LLMCall.objects.for_tenant(tenant).bulk_create(records, batch_size=STORE_BATCH)
    emails = [GeneratedEmail(tenant=tenant, run=run, contact=d.contact, **d.fields) for d in drafts if not d.stored]
    GeneratedEmail.objects.for_tenant(tenant).bulk_create(emails, ignore_conflicts=True, batch_size=STORE_BATCH)
    emails_generated(run, [email.contact_id for email in emails])  # webhooks: one event for the chunk


def chunk_fail(*, run: CampaignRun, contact_ids: list[int], reason: str) -> int:
    """Store the contacts of a chunk that could not be written as failed, with the reason, so the run ends and
    says why (they can be regenerated). Returns how many."""
    contacts = contacts_pending(run=run, contact_ids=contact_ids)
    failed = {"status": EmailStatus.FAILED, "failure_reason": reason[:2000]}
    drafts_store(run=run, drafts=[Draft(contact, dict(failed)) for contact in contacts])
    run_refresh(run=run)
    return len(contacts)


def contacts_pending(*, run: CampaignRun, contact_ids: list[int]) -> list[Contact]:
    """The contacts among `contact_ids` that have no email in the run yet."""
    done = GeneratedEmail.objects.for_tenant(run.tenant).filter(run=run, contact_id__in=contact_ids)
    return list(
        Contact.objects.for_tenant(run.tenant)
        .filter(pk__in=contact_ids)
        .exclude(pk__in=done.values("contact_id"))
        .order_by("pk")
    )


def drafts_prepare(*, run: CampaignRun, contacts: list[Contact], route, exclude=None) -> list[Draft]:
    """`exclude`: per contact id, external ids of items not to pick (a reviewer's "not this one")."""
    tenant, campaign = run.tenant, run.campaign
    with stage("recommend"):
        options = recommendation_options(campaign, contacts, exclude=exclude)
        picks = recommender_for(tenant).top_picks(contacts, campaign.n_items, options=options)
        genres = favorite_genres(tenant=tenant, contact_ids=[c.pk for c in contacts])
    with stage("shorten"):
        picks = picks_shortened(tenant=tenant, picks=picks, campaign_id=campaign.pk, run_id=run.pk)
    prompts = run_prompts(campaign)
    with stage("render"):
        return [
            draft_prepare(
                tenant=tenant,
                campaign=campaign,
                contact=c,
                picks=picks.get(c.pk, []),
                genre=genres.get(c.pk),
                prompts=prompts,
                route=route,
            )  # fmt: skip
            for c in contacts
        ]


def draft_guide(draft: Draft, feedback: str) -> None:
    """Give the model the reviewer's feedback on an earlier version; it stays in the stored prompt, so the review
    shows what was asked for."""
    if draft.ready and feedback.strip():
        draft.prompt += f"\n\nThe reviewer's feedback on an earlier version of this email: {feedback.strip()}"
        draft.fields["prompt"] = draft.prompt


def recommendation_options(campaign: Campaign, contacts: list[Contact], exclude=None) -> RecommendationOptions:
    """The campaign's filters, plus the items each contact was sent in the last `skip_emailed_days` (and those in
    `exclude`)."""
    recent: dict[int, set[str]] = {contact_id: set(ids) for contact_id, ids in (exclude or {}).items() if ids}
    if campaign.skip_emailed_days:
        since = timezone.now() - timedelta(days=campaign.skip_emailed_days)
        sent = GeneratedEmail.objects.for_tenant(campaign.tenant).filter(
            contact__in=contacts, status=EmailStatus.SENT, sent_at__gte=since
        )
        for contact_id, items in sent.values_list("contact_id", "items"):
            recent.setdefault(contact_id, set()).update(item["id"] for item in items)
    return RecommendationOptions(
        include_genres=tuple(campaign.include_genres), exclude_genres=tuple(campaign.exclude_genres),
        max_maturity=campaign.max_maturity, maturity_by_age=campaign.maturity_by_age, exclude_items=recent,
        promotion_share=campaign.promotion_share,
    )  # fmt: skip


def draft_prepare(*, tenant, campaign, contact, picks, genre, prompts: Prompts, route) -> Draft:
    fields = {"items": [{"id": p.external_id, "title": p.title, "score": round(float(p.score), 4)} for p in picks],
              "favorite_genre": genre or "",
              "model_key": route.model_key, "route_reason": route.reason}  # fmt: skip
    draft = Draft(contact, fields, titles=[p.title for p in picks])
    if not picks:
        fields.update(status=EmailStatus.FAILED, failure_reason="no recommendations for this contact")
        return draft
    context = prompt_context(tenant=tenant, campaign=campaign, contact=contact, picks=picks, favorite_genre=genre)
    try:
        draft.system, draft.prompt = render(prompts.system, context), render(prompts.body, context)
    except TemplateProblem as exc:
        fields.update(status=EmailStatus.FAILED, failure_reason=str(exc))
    fields["prompt"] = draft.prompt
    return draft


def drafts_write(drafts: list[Draft], *, run: CampaignRun, route) -> None:
    ready = [draft for draft in drafts if draft.ready]
    if not ready:
        return
    others = catalog_titles(run)
    with drafts_allowance(ready, tenant=run.tenant, route=route) as allowance:

        def write(draft: Draft) -> None:
            draft_write(draft, tenant=run.tenant, campaign=run.campaign, route=route, others=others,
                        allowance=allowance)  # fmt: skip

        workers = min(settings.LLM_CONCURRENCY, len(ready))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
            list(pool.map(write, ready))


@contextmanager
def drafts_allowance(drafts: list[Draft], *, tenant, route):
    """Reserve in the tenant's monthly budget what one call per draft can cost at most (on the dearer of the route's
    model and its fallback), or as much of it as remains if that covers one call; the calls then draw on it from
    their threads, each giving back the difference between its estimate and its cost, which pays for the retries
    (an estimate is about three times a call's usual cost; a retry that finds too little left is refused). Over budget, the allowance holds nothing and says why: every call is refused
    with that reason (a draft fails with it). On the way out the reservation is settled to what the drafts' calls
    cost."""
    specs = [get_model(route.model_key)] + ([get_model(route.fallback_key)] if route.fallback_key else [])
    per_call = [max(call_estimate(spec, draft_request(draft, tenant=tenant, spec=spec, max_tokens=route.max_tokens))
                    for spec in specs) for draft in drafts]  # fmt: skip
    before = {id(draft): len(draft.usage_records) for draft in drafts}
    try:
        allowance = budget_reserve(tenant=tenant, wanted=sum(per_call), at_least=min(per_call))
    except BudgetExceeded as exc:
        allowance = Allowance(tenant.pk, quota_month(), tenant.budget_usd, refusal=exc.message)
    try:
        yield allowance
    finally:
        spent = sum(r.cost_usd for d in drafts for r in d.usage_records[before[id(d)] :])
        budget_settle(allowance, spent)


def draft_write(draft: Draft, *, tenant, campaign, route, others: frozenset[str] = frozenset(),
                allowance: Allowance | None = None, dynamic: bool = True) -> None:  # fmt: skip
    """Call the model, validate, retry with the problems fed back, up to LLM_MAX_ATTEMPTS calls in all (a batch
    record's answer counts as one). Runs in a worker thread: no database (the calls draw on `allowance`). The
    tenant's routing strategy may send the prompt to another of its plan's models (routing.dynamic); `dynamic=False`
    (the web process's preview, which must not load an embedding model) keeps the static route."""
    started, first = time.monotonic(), len(draft.calls)
    decision = route_prompt(tenant=tenant, task=campaign.task, route=route, prompt=draft.prompt, allowance=allowance,
                            dynamic=dynamic)  # fmt: skip
    draft.routing.extend(decision.records)
    route = decision.route
    spec = get_model(route.model_key)
    while draft.ready and len(draft.calls) < settings.LLM_MAX_ATTEMPTS:
        request = draft_request(draft, tenant=tenant, spec=spec, feedback=draft.feedback, max_tokens=route.max_tokens)
        with stage("call"):
            response, call, error = llm_invoke(tenant=tenant, task=campaign.task, route=route, request=request,
                                               allowance=allowance)  # fmt: skip
        draft_answer(draft, error or response, call, tenant=tenant, campaign=campaign, others=others)
    if draft.ready:
        draft_fail(draft)
    decision_stamp(decision, draft.calls[first:], started=started)


def draft_request(draft: Draft, *, tenant, spec: ModelSpec, feedback: str = "", max_tokens: int | None = None
                  ) -> LLMRequest:  # fmt: skip
    """The model request for a draft: the same for an on-demand call and a batch record; `max_tokens`: the route's
    answer budget (None: the model's)."""
    return llm_request(tenant, spec.model_id, draft.system, draft.prompt + feedback, max_tokens=max_tokens or spec.max_tokens,
                       temperature=spec.temperature, stop=ANSWER_STOP)  # fmt: skip


def draft_answer(draft: Draft, answer: LLMResponse | ProviderError, call: LLMCall, *, tenant, campaign,
                 others: frozenset[str] = frozenset()) -> None:  # fmt: skip
    """Judge one answer from the model (or the error it gave instead): a valid email finishes the draft, a
    permanent error fails it, anything else is noted for the next attempt."""
    draft.calls.append(call)
    if isinstance(answer, ProviderError):
        draft_note(draft, f"model call failed: {answer.message}")
        if answer.permanent:
            draft_fail(draft)
        return
    if answer.stop_reason == "guardrail_intervened":
        draft_note(draft, "blocked by the tenant's Bedrock guardrail")
        return
    with stage("validate"):
        checked = check_email(closed(answer.text), titles=draft.titles, signoff=tenant.signoff, others=others)
    text = f"{checked.subject}\n\n{checked.body}"
    if checked.ok and screens_drafts(tenant) and not draft_passes_guardrail(draft, tenant, text):
        return
    if checked.ok:
        status = EmailStatus.DRAFT if campaign.review_required else EmailStatus.APPROVED
        draft.fields.update(draft_usage(draft), status=status, subject=checked.subject, body=checked.body,
                            model_key=call.model_key, route_reason=call.route_reason)  # the model that answered  # fmt: skip
        return
    draft_note(draft, "; ".join(checked.problems))
    draft.feedback = f"\n\nYour previous answer was rejected: {draft.reason}. Write it again and fix that."


def draft_passes_guardrail(draft: Draft, tenant, text: str) -> bool:
    """Whether the tenant's guardrail passes a validated draft; if not, the draft notes why for the next attempt."""
    with stage("screen"):
        verdict, record, error = draft_screen(tenant=tenant, task=GUARDRAIL_TASK, text=text)
    draft.screens.append(record)
    if error is not None:
        draft_note(draft, f"guardrail screening failed: {error.message}")
        if error.permanent:
            draft_fail(draft)
        return False
    if not verdict.intervened:
        return True
    draft_note(draft, "blocked by the tenant's Bedrock guardrail" + (f" ({verdict.reason})" if verdict.reason else ""))
    draft.feedback = ("\n\nYour previous answer was blocked by the brand's content policy. Write it again, "
                      "keeping to plain, friendly recommendations.")  # fmt: skip
    return False


def draft_note(draft: Draft, reason: str) -> None:
    """What was wrong with the latest answer: told to the next attempt, and kept for the review."""
    draft.reason = reason
    draft.problems.append({"attempt": len(draft.calls), "problem": reason[:500]})


def draft_fail(draft: Draft) -> None:
    draft.fields.update(draft_usage(draft), status=EmailStatus.FAILED, failure_reason=draft.reason[:2000])


def draft_usage(draft: Draft) -> dict:
    """Attempts, tokens and latency are the model's; the cost also counts the guardrail's screening."""
    calls = draft.calls
    return {"attempts": len(calls), "input_tokens": sum(c.input_tokens for c in calls),
            "output_tokens": sum(c.output_tokens for c in calls),
            "cost_usd": sum(c.cost_usd for c in draft.usage_records), "latency_ms": sum(c.latency_ms for c in calls),
            "checks": draft.problems, "screened": bool(draft.screens)}  # fmt: skip


def closed(text: str) -> str:
    # The stop sequence "</body>" is not returned by the model; put it back so the tags parse.
    return text if "</body>" in text.lower() or "<body>" not in text.lower() else text + "</body>"


def catalog_titles(run: CampaignRun) -> frozenset[str]:
    """The tenant's titles (normalized), to catch invented picks. Read once per run and minute, per process: a new
    run (and a regeneration's run after a minute) reads them afresh, so an item added or renamed is known. Kept
    because reading is not free: about 12 µs per item (a 20,000-item catalog: 250 ms per chunk)."""
    key, now = (run.tenant_id, run.pk), time.monotonic()
    with _titles_lock:
        read_at, titles = _titles.get(key, (None, None))
    if read_at is not None and now - read_at < TITLES_FRESH_SECONDS:
        return titles
    titles = frozenset(normalize(t) for t in Item.objects.for_tenant(run.tenant_id).values_list("title", flat=True))
    with _titles_lock:
        _titles.pop(key, None)
        _titles[key] = (now, titles)
        while len(_titles) > TITLES_KEPT:  # the runs read longest ago go first
            del _titles[next(iter(_titles))]
    return titles
