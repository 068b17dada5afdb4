"""Writing a run's emails: picks → prompt → model → validation → draft, many contacts at a time.

A chunk task prepares every prompt, runs the model calls in a bounded thread pool (they wait on the network,
so threads add throughput on two cores), then stores the usage records and emails in bulk. Rows are unique
per (run, contact), so a retried or restarted chunk only writes what is missing."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from campaigns.profiling import stage
from campaigns.prompting import TemplateProblem, default_source, prompt_context, render
from campaigns.validation import check_email, normalize
from datasets.models import Contact, Item
from recommendations.base import RecommendationOptions
from recommendations.services import favorite_genres, recommender_for
from routing.catalog import ModelSpec, get_model
from routing.errors import ProviderError
from routing.gateway import draft_screen, llm_invoke, llm_request, route_for, screens_drafts
from routing.models import LLMCall
from routing.types import LLMRequest, LLMResponse

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
class Job:
    """One contact's email in the making."""

    contact: Contact
    fields: dict
    titles: list[str] = field(default_factory=list)
    system: str = ""
    prompt: str = ""
    calls: list[LLMCall] = field(default_factory=list)  # the model's, one per attempt
    screens: list[LLMCall] = field(default_factory=list)  # the guardrail's, one per draft it screened
    reason: str = ""  # what was wrong with the last answer
    feedback: str = ""  # what the next attempt is told about it

    @property
    def usage_records(self) -> list[LLMCall]:
        return self.calls + self.screens

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
    jobs = jobs_prepare(run=run, contacts=contacts, route=route)
    jobs_write(jobs, run=run, route=route)
    with stage("store"):
        LLMCall.objects.for_tenant(tenant).bulk_create([record for job in jobs for record in job.usage_records])
        GeneratedEmail.objects.for_tenant(tenant).bulk_create(
            [GeneratedEmail(tenant=tenant, run=run, contact=job.contact, **job.fields) for job in jobs],
            ignore_conflicts=True,  # a chunk retried while its first attempt was still running
        )
    from campaigns.services import run_refresh

    run_refresh(run=run)
    return len(jobs)


def chunk_fail(*, run: CampaignRun, contact_ids: list[int], reason: str) -> int:
    """Store the contacts of a chunk that could not be written as failed, with the reason, so the run ends and
    says why (they can be regenerated). Returns how many."""
    contacts = contacts_pending(run=run, contact_ids=contact_ids)
    GeneratedEmail.objects.for_tenant(run.tenant).bulk_create(
        [GeneratedEmail(tenant=run.tenant, run=run, contact=c, status=EmailStatus.FAILED, failure_reason=reason[:2000])
         for c in contacts],
        ignore_conflicts=True,
    )  # fmt: skip
    from campaigns.services import run_refresh

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


def jobs_prepare(*, run: CampaignRun, contacts: list[Contact], route) -> list[Job]:
    tenant, campaign = run.tenant, run.campaign
    with stage("recommend"):
        options = recommendation_options(campaign, contacts)
        picks = recommender_for(tenant).top_picks(contacts, campaign.n_items, options=options)
        genres = favorite_genres(tenant=tenant, contact_ids=[c.pk for c in contacts])
    prompts = run_prompts(campaign)
    with stage("render"):
        return [
            job_prepare(
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


def recommendation_options(campaign: Campaign, contacts: list[Contact]) -> RecommendationOptions:
    """The campaign's filters, plus the items each contact was sent in the last `skip_emailed_days`."""
    recent: dict[int, set[str]] = {}
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


def job_prepare(*, tenant, campaign, contact, picks, genre, prompts: Prompts, route) -> Job:
    fields = {"items": [{"id": p.external_id, "title": p.title} for p in picks], "favorite_genre": genre or "",
              "model_key": route.model_key, "route_reason": route.reason}  # fmt: skip
    job = Job(contact, fields, titles=[p.title for p in picks])
    if not picks:
        fields.update(status=EmailStatus.FAILED, failure_reason="no recommendations for this contact")
        return job
    context = prompt_context(tenant=tenant, campaign=campaign, contact=contact, picks=picks, favorite_genre=genre)
    try:
        job.system, job.prompt = render(prompts.system, context), render(prompts.body, context)
    except TemplateProblem as exc:
        fields.update(status=EmailStatus.FAILED, failure_reason=str(exc))
    fields["prompt"] = job.prompt
    return job


def jobs_write(jobs: list[Job], *, run: CampaignRun, route) -> None:
    ready = [job for job in jobs if job.ready]
    if not ready:
        return
    others = catalog_titles(run.tenant_id, run.pk)
    workers = min(settings.LLM_CONCURRENCY, len(ready))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
        list(
            pool.map(
                lambda job: job_write(job, tenant=run.tenant, campaign=run.campaign, route=route, others=others), ready
            )
        )


def job_write(job: Job, *, tenant, campaign, route, others: frozenset[str] = frozenset()) -> None:
    """Call the model, validate, retry with the problems fed back, up to LLM_MAX_ATTEMPTS calls in all (a batch
    record's answer counts as one). Runs in a worker thread: no database."""
    spec = get_model(route.model_key)
    while job.ready and len(job.calls) < settings.LLM_MAX_ATTEMPTS:
        with stage("call"):
            response, call, error = llm_invoke(
                tenant=tenant, task=campaign.task, route=route,
                request_for=lambda model_id, extra=job.feedback: job_request(job, tenant=tenant, spec=spec,
                                                                             model_id=model_id, feedback=extra),
            )  # fmt: skip
        job_answer(job, error or response, call, tenant=tenant, campaign=campaign, others=others)
    if job.ready:
        job_fail(job)


def job_request(job: Job, *, tenant, spec: ModelSpec, model_id: str, feedback: str = "") -> LLMRequest:
    """The model request for a job: the same for an on-demand call and a batch record."""
    return llm_request(tenant, model_id, job.system, job.prompt + feedback, max_tokens=spec.max_tokens,
                       temperature=spec.temperature, stop=ANSWER_STOP)  # fmt: skip


def job_answer(job: Job, answer: LLMResponse | ProviderError, call: LLMCall, *, tenant, campaign,
               others: frozenset[str] = frozenset()) -> None:  # fmt: skip
    """Judge one answer from the model (or the error it gave instead): a valid email finishes the job, a
    permanent error fails it, anything else is noted for the next attempt."""
    job.calls.append(call)
    if isinstance(answer, ProviderError):
        job.reason = f"model call failed: {answer.message}"
        if answer.permanent:
            job_fail(job)
        return
    if answer.stop_reason == "guardrail_intervened":
        job.reason = "blocked by the tenant's Bedrock guardrail"
        return
    with stage("validate"):
        checked = check_email(closed(answer.text), titles=job.titles, signoff=tenant.signoff, others=others)
    if checked.ok and screens_drafts(tenant) and not job_screen(job, tenant, f"{checked.subject}\n\n{checked.body}"):
        return
    if checked.ok:
        status = EmailStatus.DRAFT if campaign.review_required else EmailStatus.APPROVED
        job.fields.update(job_usage(job), status=status, subject=checked.subject, body=checked.body)
        return
    job.reason = "; ".join(checked.problems)
    job.feedback = f"\n\nYour previous answer was rejected: {job.reason}. Write it again and fix that."


def job_screen(job: Job, tenant, text: str) -> bool:
    """Whether the tenant's guardrail passes a validated draft; if not, the job notes why for the next attempt."""
    with stage("screen"):
        verdict, record, error = draft_screen(tenant=tenant, task=GUARDRAIL_TASK, text=text)
    job.screens.append(record)
    if error is not None:
        job.reason = f"guardrail screening failed: {error.message}"
        if error.permanent:
            job_fail(job)
        return False
    if not verdict.intervened:
        return True
    job.reason = "blocked by the tenant's Bedrock guardrail" + (f" ({verdict.reason})" if verdict.reason else "")
    job.feedback = ("\n\nYour previous answer was blocked by the brand's content policy. Write it again, "
                    "keeping to plain, friendly recommendations.")  # fmt: skip
    return False


def job_fail(job: Job) -> None:
    job.fields.update(job_usage(job), status=EmailStatus.FAILED, failure_reason=job.reason[:2000])


def job_usage(job: Job) -> dict:
    """Attempts, tokens and latency are the model's; the cost also counts the guardrail's screening."""
    calls = job.calls
    return {"attempts": len(calls), "input_tokens": sum(c.input_tokens for c in calls),
            "output_tokens": sum(c.output_tokens for c in calls),
            "cost_usd": sum(c.cost_usd for c in job.usage_records), "latency_ms": sum(c.latency_ms for c in calls)}  # fmt: skip


def closed(text: str) -> str:
    # The stop sequence "</body>" is not returned by the model; put it back so the tags parse.
    return text if "</body>" in text.lower() or "<body>" not in text.lower() else text + "</body>"


@lru_cache(maxsize=8)
def catalog_titles(tenant_id: int, run_id: int) -> frozenset[str]:
    """The tenant's titles (normalized), loaded once per run and process, to catch invented picks."""
    titles = Item.objects.for_tenant(tenant_id).values_list("title", flat=True)
    return frozenset(normalize(t) for t in titles)
