"""The review desk: a queue of drafts shown one at a time as the recipient will see them, beside what produced
them (the contact, the picks and why, the checks, the route and its cost), decided at the keyboard.

The page is served by GeneratedEmailAdmin (so it is scoped like every admin page: the user's tenants only, another
tenant's email is a 404) and talks to three JSON views: the queue (ids, in review order, for the filters), cards
(what the page shows of a few emails, fetched ahead so the next draft is ready before it is asked for) and a
decision (approve, reject, edit, regenerate), which goes through the email's own conditional transitions."""

import difflib
import hashlib
import json
import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from campaigns import sending, services
from campaigns.judge import NEEDS_PERSON
from campaigns.models import (
    Campaign,
    CampaignRun,
    EmailEvent,
    EmailStatus,
    GeneratedEmail,
    InvalidTransition,
    SubjectMode,
)
from datasets.models import Interaction, Item
from tenants.admin import user_can, user_tenant_ids
from tenants.models import Tenant
from tenants.roles import Capability

CARDS_MAX = 20  # per request: the page asks for the next few
BULK_MAX = 5_000  # drafts one bulk decision may take
BODY_LIMIT = 64 * 1024  # a decision's JSON body
RECENT_ITEMS = 5
ORDERS = {
    # The draft judge's riskiest first (campaigns.judge); drafts it has not judged yet last, oldest first.
    "risk": (F("judge_score").desc(nulls_last=True), "pk"),
    "oldest": ("pk",),
    # Most likely to need a person first: answers the checks refused on the way, then the newest rewrite.
    "attention": ("-attempts", "pk"),
}
STATUSES = {choice.value for choice in EmailStatus}
JUDGED = {  # the desk's judge filter
    "person": Q(judge_score__gte=NEEDS_PERSON),
    "fine": Q(judge_score__lt=NEEDS_PERSON),
    "unjudged": Q(judge_score__isnull=True),
}
WORDS = re.compile(r"\s+|\S+")


class DeskError(Exception):
    def __init__(self, message: str, status: int = 400, missing: tuple[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.missing = missing  # (filter, id) of a run or campaign not among the user's


def desk_filters(request, emails) -> tuple[dict, object]:
    """The queue's filters from the query string, checked: a run or campaign not among the user's is a 404, a
    malformed value a 400 that names it."""
    query, chosen = request.GET, {}
    for name, model in (("run", CampaignRun), ("campaign", Campaign)):
        raw = query.get(name, "").strip()
        if not raw:
            continue
        if not raw.isdigit():
            raise DeskError(f"{name} must be a number, not {raw[:40]!r}")
        if not in_scope(request, model).filter(pk=int(raw)).exists():
            raise DeskError(f"no {name} {raw} here", status=404, missing=(name, raw))
        chosen[name] = int(raw)
        emails = emails.filter(run_id=int(raw)) if name == "run" else emails.filter(run__campaign_id=int(raw))
    status = query.get("status", EmailStatus.DRAFT).strip()
    if status != "all":
        if status not in STATUSES:
            raise DeskError(f"status must be one of {', '.join(sorted(STATUSES))} or all, not {status[:40]!r}")
        emails = emails.filter(status=status)
    chosen["status"] = status
    model = query.get("model", "").strip()[:100]
    if model:
        emails, chosen["model"] = emails.filter(model_key=model), model
    problem = query.get("problem", "").strip()[:200]
    if problem == "any":
        emails = emails.exclude(checks=[]) | emails.filter(status=EmailStatus.FAILED)
    elif problem:
        emails = emails.filter(Q(failure_reason__icontains=problem) | Q(checks__icontains=problem))
    if problem:
        chosen["problem"] = problem
    judged = query.get("judge", "").strip()
    if judged:
        if judged not in JUDGED:
            raise DeskError(f"judge must be one of {', '.join(JUDGED)}, not {judged[:40]!r}")
        emails, chosen["judge"] = emails.filter(JUDGED[judged]), judged
    order = query.get("order", "risk")
    if order not in ORDERS:
        raise DeskError(f"order must be one of {', '.join(ORDERS)}, not {order[:40]!r}")
    chosen["order"] = order
    return chosen, emails.order_by(*ORDERS[order])


def in_scope(request, model):
    ids = user_tenant_ids(request.user)
    rows = model.dangerously_unscoped.all()
    return rows if ids is None else rows.filter(tenant_id__in=ids)


def queue_view(modeladmin, request):
    try:
        chosen, emails = desk_filters(request, modeladmin.get_queryset(request))
    except DeskError as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    return JsonResponse({"filters": chosen, "ids": list(emails.values_list("pk", flat=True)[:10_000])})


def cards_view(modeladmin, request):
    raw = [part for part in request.GET.get("ids", "").split(",") if part.strip()]
    if not raw or len(raw) > CARDS_MAX or not all(part.strip().isdigit() for part in raw):
        return JsonResponse({"error": f"ids: 1 to {CARDS_MAX} email ids, comma-separated"}, status=400)
    ids = [int(part) for part in raw]
    emails = modeladmin.get_queryset(request).filter(pk__in=ids).select_related("contact", "run__campaign", "tenant")
    found = {email.pk: email for email in emails}
    cards = cards_for([found[pk] for pk in ids if pk in found], request.user)
    return JsonResponse({"cards": cards, "missing": [pk for pk in ids if pk not in found]})


def decide_view(modeladmin, request, object_id):
    if not str(object_id).isdigit():
        raise Http404
    email = modeladmin.get_queryset(request).select_related("contact", "run__campaign", "tenant")
    email = email.filter(pk=int(object_id)).first()
    if email is None:  # first: a GET must not tell another tenant's id from a missing one
        raise Http404
    if request.method != "POST":
        return JsonResponse({"error": "POST a decision"}, status=405)
    if not user_can(request.user, Capability.REVIEW, email.tenant_id):
        return JsonResponse({"error": "your role in this tenant does not review emails"}, status=403)
    try:
        decision = decision_read(request)
        if decision.get("action") == "test":
            return test_send(request, email)
        decide(email, decision, by=str(request.user))
    except DeskError as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    except InvalidTransition as exc:
        email.refresh_from_db()
        return JsonResponse({"error": str(exc), "card": cards_for([email], request.user)[0]}, status=409)
    except (ValidationError, services.CampaignError) as exc:
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return JsonResponse({"error": message}, status=400)
    email.refresh_from_db()
    return JsonResponse({"card": cards_for([email], request.user)[0]})


def test_send(request, email: GeneratedEmail) -> JsonResponse:
    """The draft to the reviewer's own address, marked as a test; the email itself does not change."""
    to = (request.user.email or "").strip()
    if not to:
        said = "your user has no email address to send a test to; an owner or administrator can add one to it"
        return JsonResponse({"error": said}, status=400)
    try:
        sending.email_test_send(email=email, to=to, by=str(request.user))
    except sending.InvalidMessage as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except sending.TestSendRefused as exc:
        return JsonResponse({"error": str(exc)}, status=502)
    return JsonResponse({"sent_to": to, "card": cards_for([email], request.user)[0]})


def bulk_view(modeladmin, request):
    """Approve or reject every draft the desk's filters select, after a confirmation that says how many.

    GET (the filters in the query string) counts them and answers a token naming that exact set; POST
    {"action": "approve"|"reject", "reason": ..., "token": ...} decides them, unless the set has changed since it
    was counted (a 409 with the new count and token, to confirm again). Only drafts, and only in the tenants
    where the user's role reviews."""
    try:
        chosen, emails = desk_filters(request, modeladmin.get_queryset(request))
    except DeskError as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    drafts = emails.filter(status=EmailStatus.DRAFT).order_by()
    tenant_ids = set(drafts.values_list("tenant_id", flat=True).distinct())
    reviewed = {pk for pk in tenant_ids if user_can(request.user, Capability.REVIEW, pk)}
    pks = list(drafts.filter(tenant_id__in=reviewed).order_by("pk").values_list("pk", flat=True)[: BULK_MAX + 1])
    if len(pks) > BULK_MAX:
        return JsonResponse(
            {"error": f"these filters select more than {BULK_MAX:,} drafts; narrow them (a run, a campaign, a model)"},
            status=400,
        )
    token = hashlib.sha256(",".join(map(str, pks)).encode()).hexdigest()[:16]
    tenants = Tenant.objects.filter(pk__in=reviewed).order_by("pk")
    reasons = list(dict.fromkeys(reason for tenant in tenants for reason in tenant.reject_reasons or []))
    counted = {"count": len(pks), "token": token, "not_reviewed": drafts.exclude(tenant_id__in=reviewed).count(),
               "reject_reasons": reasons, "filters": chosen}  # fmt: skip
    if request.method != "POST":
        return JsonResponse(counted)
    try:
        decision = decision_read(request)
    except DeskError as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    action = decision.get("action", "")
    if action not in ("approve", "reject"):
        return JsonResponse({"error": f"action must be approve or reject, not {str(action)[:40]!r}"}, status=400)
    if not pks:
        return JsonResponse({"error": f"no drafts here to {action}", **counted}, status=400)
    if decision.get("token") != token:
        said = f"the drafts these filters select have changed: {len(pks)} now; confirm again"
        return JsonResponse({"error": said, **counted}, status=409)
    try:
        changed = GeneratedEmail.review_many(
            pks, action=action, by=str(request.user), reason=decision.get("reason", "")
        )
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    return JsonResponse({"action": action, "changed": len(changed), "skipped": len(pks) - len(changed)})


def decision_read(request) -> dict:
    if len(request.body) > BODY_LIMIT:
        raise DeskError(f"the decision is {len(request.body)} bytes; at most {BODY_LIMIT}", status=413)
    try:
        decision = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise DeskError("the decision is not JSON") from None
    if not isinstance(decision, dict):
        raise DeskError('the decision is a JSON object: {"action": ...}')
    for name in ("action", "reason", "subject", "body", "feedback", "token"):
        if name in decision and not isinstance(decision[name], str):
            raise DeskError(f"{name} must be text")
    variant = decision.get("variant", 0)
    if isinstance(variant, bool) or not isinstance(variant, int):
        raise DeskError("variant must be a whole number: the subject variant's index")
    exclude = decision.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(item, str) for item in exclude):
        raise DeskError("exclude must be a list of item ids")
    return decision


def decide(email: GeneratedEmail, decision: dict, *, by: str) -> None:
    action = decision.get("action", "")
    if action == "approve":
        email.approve(by=by)
    elif action == "reject":
        email.reject(by=by, reason=decision.get("reason", ""))
    elif action == "edit":
        email.edit_and_approve(by=by, subject=decision.get("subject", ""), body=decision.get("body", ""))
    elif action == "regenerate":
        services.email_regenerate_request(
            email=email, feedback=decision.get("feedback", ""), exclude=tuple(decision.get("exclude", ())), by=by
        )
    elif action == "subject":  # the reviewer picks a subject variant: a recorded change, the draft stays a draft
        email.subject_pick(by=by, index=decision.get("variant", 0))
    else:
        raise DeskError(f"action must be approve, reject, edit, regenerate, subject or test, not {str(action)[:40]!r}")


def cards_for(emails: list[GeneratedEmail], user) -> list[dict]:
    """What the desk shows of each email, in a handful of queries whatever their number."""
    if not emails:
        return []
    by_tenant: dict[int, set[str]] = {}
    for email in emails:
        by_tenant.setdefault(email.tenant_id, set()).update(str(item.get("id")) for item in email.items)
    items = {}
    for tenant_id, external_ids in by_tenant.items():
        for item in Item.dangerously_unscoped.filter(tenant_id=tenant_id, external_id__in=external_ids):
            items[tenant_id, item.external_id] = item
    recent = recent_items([email.contact for email in emails])
    events: dict[int, list] = {}
    for event in EmailEvent.dangerously_unscoped.filter(email__in=emails).order_by("at", "pk"):
        events.setdefault(event.email_id, []).append(
            {"kind": event.get_kind_display(), "actor": event.actor, "at": event.at.isoformat(), "detail": event.detail}
        )
    reviewer = {tenant_id: user_can(user, Capability.REVIEW, tenant_id) for tenant_id in by_tenant}
    return [
        card(email, items, recent.get(email.contact_id, []), events.get(email.pk, []), reviewer) for email in emails
    ]


def recent_items(contacts) -> dict[int, list[dict]]:
    """The last few items each contact interacted with (one query: a window over their interactions)."""
    rows = (
        Interaction.dangerously_unscoped.filter(contact__in=contacts)
        .annotate(n=Window(RowNumber(), partition_by=F("contact_id"), order_by=F("timestamp").desc()))
        .filter(n__lte=RECENT_ITEMS)
        .values("contact_id", "item__title", "event_type", "timestamp")
    )
    recent: dict[int, list[dict]] = {}
    for row in rows.order_by("contact_id", "-timestamp"):
        recent.setdefault(row["contact_id"], []).append(
            {"title": row["item__title"], "event": row["event_type"], "at": row["timestamp"].date().isoformat()}
        )
    return recent


def card(email: GeneratedEmail, items: dict, recent: list, events: list, reviewer: dict) -> dict:
    contact, tenant = email.contact, email.tenant
    parts = sending.message_parts(email) if email.subject or email.body else {"text": "", "html": ""}
    return {
        "id": email.pk,
        "status": email.status,
        "status_label": email.get_status_display(),
        "can_review": reviewer.get(email.tenant_id, False),
        "tenant": tenant.name,
        "campaign": email.run.campaign.name,
        "run": email.run_id,
        "subject": email.subject,
        # The subject variants written for it, the one in use, and whether the reviewer may pick another (a
        # draft of a campaign in "pick" mode; an A/B campaign splits them across contacts instead).
        "subject_candidates": email.subject_candidates or [],
        "subject_variant": email.subject_variant,
        "subject_pickable": bool(email.subject_candidates)
        and email.status == EmailStatus.DRAFT
        and email.run.campaign.subject_mode == SubjectMode.PICK,
        "body": email.body,
        "text": parts["text"],
        "html": parts["html"],
        "from": tenant.from_email,
        "to": f"{contact.full_name} <{contact.email}>" if contact.full_name else contact.email,
        "edited": email.edited,
        "original_subject": email.original_subject,
        "original_body": email.original_body,
        "diff": word_diff(email.original_body, email.body) if email.edited and email.original_body else [],
        "subject_diff": (
            word_diff(email.original_subject, email.subject) if email.edited and email.original_subject else []
        ),
        "feedback": email.feedback,
        "failure_reason": email.failure_reason,
        "reject_reason": email.reject_reason,
        "reviewed_by": email.reviewed_by,
        "send_error": email.send_error,  # why it failed, or waits (paused, outside its window, over the cap)
        "send_after": email.send_after.isoformat() if email.send_after else None,
        "contact": {
            "name": contact.full_name or contact.email,
            "email": contact.email,
            "age": contact.age,
            "gender": contact.gender,
            "locale": contact.locale,
            "favorite_genre": email.favorite_genre,
            "recent": recent,
        },
        "picks": [
            pick(rank, entry, items.get((email.tenant_id, str(entry.get("id")))), email.favorite_genre)
            for rank, entry in enumerate(email.items, 1)
        ],  # fmt: skip
        "checks": {
            "refused": email.checks,
            "attempts": email.attempts,
            "passed": email.status not in (EmailStatus.FAILED, EmailStatus.REGENERATING),
            "screened": email.screened,
            "guardrail": guardrail_text(email, tenant),
        },
        "model": email.model_key,
        "route": email.route_reason,
        "input_tokens": email.input_tokens,
        "output_tokens": email.output_tokens,
        "cost_usd": str(email.cost_usd.quantize(Decimal("0.000001"))),
        "latency_ms": email.latency_ms,
        "prompt": email.prompt,
        "reject_reasons": list(tenant.reject_reasons or []),
        "events": events,
        "judge": judge_card(email),
    }


def judge_card(email: GeneratedEmail) -> dict | None:
    """What the desk shows of the judge's verdict: None before it judged the draft."""
    if email.judge_score is None:
        return None
    return {
        "risk": round(email.judge_score, 2),
        "needs_person": email.judge_score >= NEEDS_PERSON,
        "reasons": [{"code": str(r.get("code", "")), "message": str(r.get("message", ""))[:300]}
                    for r in email.judge_reasons or [] if isinstance(r, dict)],
        "model": email.judge_model,
    }  # fmt: skip


def pick(rank: int, entry: dict, item: Item | None, favorite: str) -> dict:
    """A pick and why it was picked: its rank and score from the recommender, and what it shares with the contact."""
    why = [f"#{rank} of the contact's top picks"]
    if entry.get("score") is not None:
        why[0] += f" (score {entry['score']:.3f})"
    if item is None:
        return {"id": entry.get("id"), "title": entry.get("title", ""), "why": why, "genres": [], "plot": "",
                "year": None, "missing": True}  # fmt: skip
    genres = list(item.genres or [])
    if favorite and favorite.lower() in (genre.lower() for genre in genres):
        why.append(f"in their favorite genre, {favorite}")
    if item.promotion:
        why.append("a promoted title")
    return {"id": item.external_id, "title": item.title, "year": item.year, "genres": genres, "plot": item.plot,
            "rating": item.maturity_rating_string, "why": why}  # fmt: skip


def guardrail_text(email: GeneratedEmail, tenant: Tenant) -> str:
    if email.screened:
        return "screened by the tenant's guardrail: passed" if email.status != EmailStatus.FAILED else "screened"
    if tenant.bedrock_guardrail_id:
        return "the guardrail screens inside each Bedrock call"
    return "no guardrail set for this tenant"


def word_diff(before: str, after: str) -> list[list[str]]:
    """[op, text] runs, op one of "=", "-", "+": what the person changed, word by word. Spaces and line breaks are
    tokens of their own, so joining the runs gives back both texts, paragraphs and all; two changes with only
    spaces between them are one change ("-Fresh picks +Your cozy", not "-Fresh +Your = -picks +cozy")."""
    old, new = WORDS.findall(before), WORDS.findall(after)
    merged: list[list[str]] = []  # [tag, old text, new text]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        part = ["=" if tag == "equal" else "~", "".join(old[i1:i2]), "".join(new[j1:j2])]
        if (
            part[0] == "~"
            and len(merged) > 1
            and merged[-1][0] == "="
            and merged[-1][1].isspace()
            and merged[-2][0] == "~"
        ):
            space = merged.pop()[1]
            merged[-1][1] += space + part[1]
            merged[-1][2] += space + part[2]
        else:
            merged.append(part)
    runs = []
    for tag, was, now in merged:
        if tag == "=":
            runs.append(["=", was])
            continue
        runs.extend([op, text] for op, text in (("-", was), ("+", now)) if text)
    return runs


def desk_view(modeladmin, request):
    emails = modeladmin.get_queryset(request)
    try:
        chosen, _ = desk_filters(request, emails)
    except DeskError as exc:
        if exc.missing:
            return desk_missing(modeladmin, request, *exc.missing)
        chosen = {"status": EmailStatus.DRAFT, "order": "risk", "error": str(exc)}
    runs = in_scope(request, CampaignRun).select_related("campaign")
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Review desk",
        "opts": modeladmin.model._meta,
        "filters": chosen,
        "runs": runs.order_by("-pk")[:200],
        "campaigns": in_scope(request, Campaign).order_by("name"),
        "models": emails.exclude(model_key="").order_by("model_key").values_list("model_key", flat=True).distinct(),
        "statuses": [*EmailStatus.choices, ("all", "All")],
        "orders": [("risk", "Riskiest first (judge)"), ("oldest", "Oldest first"), ("attention", "Most retries first")],
        "judged": [("", "all"), ("person", "Needs a person"), ("fine", "Looks fine"), ("unjudged", "Not judged yet")],
        "is_nav_sidebar_enabled": False,  # the desk needs the whole width
        "desk_config": {
            "queue": reverse("admin:campaigns_generatedemail_desk_queue"),
            "cards": reverse("admin:campaigns_generatedemail_desk_cards"),
            "decide": reverse("admin:campaigns_generatedemail_desk_decide", args=[0]),
            "bulk": reverse("admin:campaigns_generatedemail_desk_bulk"),
            "query": request.GET.urlencode(),
        },
    }
    return TemplateResponse(request, "admin/campaigns/generatedemail/desk.html", context)


def desk_missing(modeladmin, request, name: str, raw: str) -> TemplateResponse:
    """The desk's page for a run or campaign that is not among the user's, a 404: the same for one that does not
    exist and for another tenant's."""
    changelist = f"admin:campaigns_{'campaign' if name == 'campaign' else 'campaignrun'}_changelist"
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"No {name} {raw}",
        "missing": {"name": name, "id": raw, "changelist": changelist},
    }
    return TemplateResponse(request, "admin/campaigns/generatedemail/desk_missing.html", context, status=404)
