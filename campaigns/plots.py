"""Plot shortening: an item whose plot is longer than PLOT_SHORTEN_OVER characters goes into prompts as a short
summary the model wrote on the "shorten" route, made once per item and kept on it (Item.short_plot, with the
sha256 of the plot it summarizes), so every run of every campaign reuses it and an edited plot is shortened again.

A chunk shortens the items it needs before it renders its prompts. No transaction or row lock is held across a
model call: the chunk claims the items with a conditional UPDATE (Item.short_plot_claim, a token, and
short_plot_claimed_until, a lease as long as a task may live), then calls the model for its claimed items in a
bounded thread pool (no database there; one budget reservation for them all, settled after), then writes each
summary with an UPDATE guarded by its claim and by the plot it summarized (an edited plot is not given an old
summary), which also gives the claim back. Two chunks needing the same item make one call: the one that finds it
claimed waits (polling, up to CLAIM_WAIT_SECONDS) for the claim to be given back and reads what was written. A
failed shortening (model error, over budget, an answer without the tags, a route that cannot serve) never fails a
draft: the prompt gets the plot truncated, and the item records why (tried again next run)."""

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from django.conf import settings
from django.utils import timezone

from campaigns.leases import claims_release, rows_claim
from campaigns.prompting import clean_text
from datasets.models import Item
from routing.budget import Allowance, BudgetExceeded, budget_reserve, budget_settle, call_estimate
from routing.catalog import UnknownModel, get_model
from routing.errors import ProviderError
from routing.gateway import llm_invoke, llm_request, route_for
from routing.models import LLMCall
from routing.seed import SHORTEN_TASK
from tenants.services import quota_month

SYSTEM = "You shorten movie plot descriptions for marketing emails. Keep names and the premise; no spoilers."
_SHORT = re.compile(r"<short>(.*?)</short>", re.DOTALL | re.IGNORECASE)
CLAIM_WAIT_SECONDS, CLAIM_POLL_SECONDS = 120.0, 0.1  # waiting for another chunk's claim to be given back
UNCLAIMED = {"short_plot_claim": "", "short_plot_claimed_until": None}


def plot_hash(plot: str) -> str:
    return hashlib.sha256(plot.encode()).hexdigest()


def needs_short(plot: str) -> bool:
    return len(plot or "") > settings.PLOT_SHORTEN_OVER


def truncated(plot: str) -> str:
    """The plot cut at a word boundary to about PLOT_SHORT_CHARS, marked as cut."""
    limit = settings.PLOT_SHORT_CHARS
    text = " ".join((plot or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(",;:") + "…"


def shorten_prompt(plot: str) -> str:
    return (
        f"Shorten this plot to at most {settings.PLOT_SHORT_CHARS} characters, in one or two sentences. "
        f"Answer only with <short>the shortened plot</short>.\n<shorten>{clean_text(plot, 20_000)}</shorten>"
    )


def parse_short(text: str) -> tuple[str, str]:
    """The summary in an answer and "" , or "" and why there is none."""
    match = _SHORT.search(text or "")
    short = " ".join(match.group(1).split()) if match else ""
    if not short:
        return "", "the answer had no <short>…</short>"
    if len(short) > 2 * settings.PLOT_SHORT_CHARS:
        return "", f"the summary was {len(short)} characters, over twice the {settings.PLOT_SHORT_CHARS} asked for"
    return short, ""


def picks_shortened(*, tenant, picks: dict, campaign_id=None, run_id=None) -> dict:
    """`picks` (contact pk → [Pick]) with every long plot replaced by its summary (made now if the item has none
    for its current plot) or, where shortening failed, by the plot truncated."""
    long = {p.external_id for ps in picks.values() for p in ps if needs_short(p.plot)}
    if not long:
        return picks
    shorts = plots_short(tenant=tenant, external_ids=long, campaign_id=campaign_id, run_id=run_id)
    return {
        contact: [replace(p, plot=shorts.get(p.external_id) or truncated(p.plot)) if p.external_id in long else p
                  for p in ps]
        for contact, ps in picks.items()
    }  # fmt: skip


def plots_short(*, tenant, external_ids, campaign_id=None, run_id=None,
                wait_seconds: float = CLAIM_WAIT_SECONDS) -> dict[str, str]:  # fmt: skip
    """external id → the item's summary of its current plot ("" none: shortening failed, or another chunk's claim
    outlasted `wait_seconds`), shortening those that have none, once across concurrent chunks. Call it outside a
    transaction: a caller's would keep the claims' row locks across the model calls."""
    items = Item.objects.for_tenant(tenant)
    wanted, shorts, waited_for = set(external_ids), {}, set()
    deadline = time.monotonic() + wait_seconds
    while wanted:
        now, pending = timezone.now(), []
        for item in items.filter(external_id__in=wanted):
            current = _current(item)
            until = item.short_plot_claimed_until
            claimed = bool(item.short_plot_claim) and until is not None and until > now
            if current or (item.external_id in waited_for and not claimed):  # done, or another chunk's answer
                shorts[item.external_id] = current
            elif claimed:
                waited_for.add(item.external_id)
                continue
            else:
                pending.append(item)
                continue
            wanted.discard(item.external_id)
        wanted &= {item.external_id for item in pending} | waited_for  # an id no item has is nobody's to wait for
        if pending:
            done = _shorten_claimed(tenant, pending, campaign_id, run_id)
            shorts.update(done)
            wanted -= set(done)
        if wanted - waited_for:  # claimed by another chunk between our read and our claim: read again now
            continue
        if not wanted or time.monotonic() >= deadline:
            break
        time.sleep(CLAIM_POLL_SECONDS)
    for external_id in wanted:  # still claimed elsewhere after the wait: this chunk's prompts get the plot truncated
        shorts[external_id] = ""
    return shorts


def _current(item: Item) -> str:
    return item.short_plot if item.short_plot and item.short_plot_source == plot_hash(item.plot) else ""


def _shorten_claimed(tenant, candidates: list[Item], campaign_id, run_id) -> dict[str, str]:
    """Claim what it can of `candidates` (free, or their claim ran out), shorten those with one model call each,
    store the summaries and give the claims back. Returns external id → summary ("" failed) for the items it
    claimed; the others another chunk holds."""
    items = Item.objects.for_tenant(tenant)
    token = rows_claim(items.filter(pk__in=[item.pk for item in candidates]), field="short_plot_claim")
    mine = list(items.filter(short_plot_claim=token))
    try:
        shorts = {item.external_id: _current(item) for item in mine if _current(item)}  # written just before our claim
        todo = [item for item in mine if item.external_id not in shorts]
        shorts.update(_shorten(tenant, todo, campaign_id, run_id) if todo else {})
        return shorts
    finally:  # whatever happened (the writes below give theirs back): no claim is left for others to wait out
        claims_release(items, field="short_plot_claim", token=token)


def _shorten(tenant, todo: list[Item], campaign_id, run_id) -> dict[str, str]:
    """One model call per claimed item, concurrently (LLM_CONCURRENCY threads, no database in them), drawing on
    one reservation in the tenant's budget; then the usage records and each item's summary (or why it failed),
    written only where the claim and the plot are still the ones shortened."""
    try:
        route = route_for(tenant=tenant, task=SHORTEN_TASK)
        specs = [get_model(route.model_key)] + ([get_model(route.fallback_key)] if route.fallback_key else [])
    except (ProviderError, UnknownModel) as exc:  # a plan misconfigured: the plots are truncated, and say why
        message = exc.message if isinstance(exc, ProviderError) else f"unknown model {exc}"
        return _store(tenant, [(item, None, None, f"no route for shortening: {message}") for item in todo])
    requests = [llm_request(tenant, specs[0].model_id, SYSTEM, shorten_prompt(item.plot),
                            max_tokens=route.max_tokens or specs[0].max_tokens, temperature=0.2)
                for item in todo]  # fmt: skip
    per_call = [max(call_estimate(spec, request) for spec in specs) for request in requests]
    try:
        allowance = budget_reserve(tenant=tenant, wanted=sum(per_call), at_least=min(per_call))
    except BudgetExceeded as exc:  # every call is refused with the limit
        allowance = Allowance(tenant.pk, quota_month(), tenant.budget_usd, refusal=exc.message)
    answers = []

    def call(pair) -> None:  # a worker thread: no database
        item, request = pair
        response, record, error = llm_invoke(tenant=tenant, task=SHORTEN_TASK, route=route, request=request,
                                             allowance=allowance)  # fmt: skip
        short, problem = ("", f"model call failed: {error.message}") if error else parse_short(response.text)
        answers.append((item, record, short, problem))

    try:
        workers = min(settings.LLM_CONCURRENCY, len(todo))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shorten") as pool:
            list(pool.map(call, zip(todo, requests, strict=True)))
    finally:
        budget_settle(allowance, sum(record.cost_usd for _, record, _, _ in answers))
    return _store(tenant, [(item, record, short, problem) for item, record, short, problem in answers],
                  campaign_id=campaign_id, run_id=run_id)  # fmt: skip


def _store(tenant, answers, *, campaign_id=None, run_id=None) -> dict[str, str]:
    """The calls' usage records, and per item its summary or its problem, guarded: only while this chunk's claim
    holds and the plot is the one it shortened (an edit meanwhile is shortened again by the next chunk)."""
    records = [record for _, record, _, _ in answers if record is not None]
    for record in records:
        record.campaign_id, record.run_id = campaign_id, run_id
    LLMCall.objects.for_tenant(tenant).bulk_create(records)
    items, shorts = Item.objects.for_tenant(tenant), {}
    for item, _, short, problem in answers:
        changes = ({"short_plot": short, "short_plot_source": plot_hash(item.plot), "short_plot_problem": ""}
                   if short else {"short_plot_problem": problem[:500]})  # fmt: skip
        same = items.filter(pk=item.pk, short_plot_claim=item.short_plot_claim, plot=item.plot)
        stored = same.update(**changes, **UNCLAIMED)
        shorts[item.external_id] = short if stored else ""
    return shorts
