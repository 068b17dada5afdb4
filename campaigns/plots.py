"""Plot shortening: an item whose plot is longer than PLOT_SHORTEN_OVER characters goes into prompts as a short
summary the model wrote on the "shorten" route, made once per item and kept on it (Item.short_plot, with the
sha256 of the plot it summarizes), so every run of every campaign reuses it and an edited plot is shortened again.

A chunk shortens the items it needs before it renders its prompts (main thread: the database is used). Two chunks
needing the same item make one call: the items are claimed with SELECT … FOR UPDATE SKIP LOCKED, and a chunk that
found an item claimed waits for that claim's commit (FOR UPDATE, no lock of its own held) and reads its summary.
A failed shortening (model error, over budget, an answer without the tags) never fails a draft: the prompt gets
the plot truncated, and the item records why (tried again next run)."""

import hashlib
import re
from dataclasses import replace

from django.conf import settings
from django.db import transaction

from campaigns.prompting import clean_text
from datasets.models import Item
from routing.catalog import get_model
from routing.gateway import llm_invoke, llm_request, route_for
from routing.models import LLMCall
from routing.seed import SHORTEN_TASK

SYSTEM = "You shorten movie plot descriptions for marketing emails. Keep names and the premise; no spoilers."
_SHORT = re.compile(r"<short>(.*?)</short>", re.DOTALL | re.IGNORECASE)


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


def plots_short(*, tenant, external_ids, campaign_id=None, run_id=None) -> dict[str, str]:
    """external id → the item's summary of its current plot ("" none: shortening failed), shortening those that
    have none, once across concurrent chunks."""
    items = Item.objects.for_tenant(tenant)
    shorts, claimed_elsewhere = {}, set()
    with transaction.atomic():
        mine = {item.external_id: item for item in
                items.filter(external_id__in=external_ids).select_for_update(skip_locked=True)}  # fmt: skip
        claimed_elsewhere = set(external_ids) - set(mine)
        for item in mine.values():
            shorts[item.external_id] = _current(item) or _shorten(tenant, item, campaign_id, run_id)
    if claimed_elsewhere:  # another chunk is shortening these: wait for its commit, then read what it wrote
        with transaction.atomic():
            for item in items.filter(external_id__in=claimed_elsewhere).select_for_update():
                shorts[item.external_id] = _current(item)
    return shorts


def _current(item: Item) -> str:
    return item.short_plot if item.short_plot and item.short_plot_source == plot_hash(item.plot) else ""


def _shorten(tenant, item: Item, campaign_id, run_id) -> str:
    """One model call for the item's summary, stored on it (or why it failed); its usage recorded."""
    route = route_for(tenant=tenant, task=SHORTEN_TASK)
    spec = get_model(route.model_key)
    request = llm_request(tenant, spec.model_id, SYSTEM, shorten_prompt(item.plot),
                          max_tokens=route.max_tokens or spec.max_tokens, temperature=0.2)  # fmt: skip
    response, record, error = llm_invoke(tenant=tenant, task=SHORTEN_TASK, route=route, request=request)
    record.campaign_id, record.run_id = campaign_id, run_id
    LLMCall.objects.for_tenant(tenant).bulk_create([record])
    short, problem = ("", f"model call failed: {error.message}") if error else parse_short(response.text)
    done = {"short_plot": short, "short_plot_source": plot_hash(item.plot), "short_plot_problem": ""}
    Item.objects.for_tenant(tenant).filter(pk=item.pk).update(
        **(done if short else {"short_plot_problem": problem[:500]})
    )
    return short
