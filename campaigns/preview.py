"""A campaign's email for one contact, before launching: the picks and why, the rendered prompt, and a sample
written by the tenant's routed model and checked as a run checks it. Nothing of a run is created (no run, no
GeneratedEmail, no quota held); the model calls are the tenant's usage like any other, so they are recorded."""

from dataclasses import dataclass, field
from decimal import Decimal

from campaigns.generation import draft_prepare, draft_write, recommendation_options, run_prompts
from campaigns.models import Campaign, EmailStatus
from campaigns.plots import picks_shortened
from datasets.models import Contact, Item
from recommendations.services import favorite_genres, recommender_for
from routing.gateway import route_for
from routing.models import LLMCall
from tenants.scoping import tenant_scope


@dataclass(frozen=True)
class PreviewPick:
    rank: int
    external_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    plot: str
    score: float
    why: str


@dataclass
class Preview:
    contact: Contact
    favorite_genre: str
    picks: list[PreviewPick] = field(default_factory=list)
    system: str = ""
    prompt: str = ""
    subject: str = ""
    body: str = ""
    ok: bool = False
    problem: str = ""  # why there is no sample email (no picks, a template error, the model's answers refused)
    model_key: str = ""
    route_reason: str = ""
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0


def campaign_preview(*, campaign: Campaign, contact: Contact, write: bool = True) -> Preview:
    """The campaign's email for `contact` as a run would write it. The contact must be of the campaign's tenant
    (the caller looks it up in that tenant: another tenant's contact is not found)."""
    if contact.tenant_id != campaign.tenant_id:
        raise ValueError("the contact is not of the campaign's tenant")
    tenant = campaign.tenant
    with tenant_scope(tenant):
        options = recommendation_options(campaign, [contact])
        picks = recommender_for(tenant).top_picks([contact], campaign.n_items, options=options).get(contact.pk, [])
        picks = picks_shortened(tenant=tenant, picks={contact.pk: picks}, campaign_id=campaign.pk)[contact.pk]
        genre = favorite_genres(tenant=tenant, contact_ids=[contact.pk]).get(contact.pk) or ""
        route = route_for(tenant=tenant, task=campaign.task)
        draft = draft_prepare(tenant=tenant, campaign=campaign, contact=contact, picks=picks, genre=genre,
                              prompts=run_prompts(campaign), route=route)  # fmt: skip
        promoted = set(
            Item.objects.for_tenant(tenant)
            .filter(external_id__in=[p.external_id for p in picks], promotion=True)
            .values_list("external_id", flat=True)
        )
        preview = Preview(contact=contact, favorite_genre=genre, system=draft.system, prompt=draft.prompt,
                          model_key=route.model_key, route_reason=route.reason)  # fmt: skip
        preview.picks = [
            PreviewPick(rank=i, external_id=p.external_id, title=p.title, year=p.year, genres=tuple(p.genres),
                        plot=p.plot, score=p.score, why=why_picked(p, i, genre, p.external_id in promoted, tenant))
            for i, p in enumerate(picks, 1)
        ]  # fmt: skip
        if not draft.ready:  # no picks, or the template failed to render
            preview.problem = draft.fields.get("failure_reason", "")
            return preview
        if not write:
            return preview
        titles = frozenset(Item.objects.for_tenant(tenant).values_list("title", flat=True))
        # Static: the preview runs in the web process, which never loads an embedding model.
        draft_write(draft, tenant=tenant, campaign=campaign, route=route, others=titles, dynamic=False)
        LLMCall.objects.for_tenant(tenant).bulk_create(draft.usage_records)
    fields = draft.fields
    preview.ok = fields.get("status") in (EmailStatus.DRAFT, EmailStatus.APPROVED)
    preview.subject, preview.body = fields.get("subject", ""), fields.get("body", "")
    preview.problem = "" if preview.ok else fields.get("failure_reason", "")
    for name in ("attempts", "input_tokens", "output_tokens", "cost_usd", "latency_ms"):
        setattr(preview, name, fields.get(name, getattr(preview, name)))
    return preview


def why_picked(pick, rank: int, favorite_genre: str, promoted: bool, tenant) -> str:
    """In words a marketer reads: the recommender's rank, the favorite genre it matches, a promotion."""
    source = "Amazon Personalize" if tenant.recommender == "personalize" else "the embedded recommender"
    reasons = [f"#{rank} for this contact from {source} (score {pick.score:.2f})"]
    if favorite_genre and favorite_genre.lower() in (g.lower() for g in pick.genres):
        reasons.append(f"{favorite_genre} is their favorite genre")
    if promoted:
        reasons.append("a promoted title")
    return "; ".join(reasons)
