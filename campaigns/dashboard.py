"""The dashboard at /admin/: the figures a marketer opens first, for the tenant chosen in the header (or all of
the user's), over a date range and optionally one campaign or run. Every figure is aggregated in the database
over the scoped managers; the charts are drawn by campaigns.charts."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib import admin
from django.db import connection
from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Substr, TruncDate
from django.http import Http404
from django.utils import timezone

from campaigns import charts
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail
from datasets.models import Item
from routing.models import LLMCall
from tenants.models import Tenant
from tenants.scoping import current_tenant

DEFAULT_DAYS, MAX_DAYS, RANGES = 30, 365, (7, 30, 90)
# The statuses a person approved (or that were approved for them): sent or on the way, or stopped at sending.
APPROVED = (EmailStatus.APPROVED, EmailStatus.SENDING, EmailStatus.SENT, EmailStatus.SEND_FAILED,
            EmailStatus.SEND_UNKNOWN, EmailStatus.SUPPRESSED)  # fmt: skip
# Emails by status over time: the eleven statuses in the six groups a marketer tells apart, each in its colour.
SKY, GREEN, BLUE, VERMILLION, ORANGE, PURPLE = (charts.PALETTE[i] for i in (4, 2, 0, 3, 1, 5))
STATUS_GROUPS = {
    "Waiting for review": ((EmailStatus.DRAFT, EmailStatus.REGENERATING), SKY),
    "Approved": ((EmailStatus.APPROVED, EmailStatus.SENDING), GREEN),
    "Sent": ((EmailStatus.SENT,), BLUE),
    "Rejected": ((EmailStatus.REJECTED,), VERMILLION),
    "Failed to write": ((EmailStatus.FAILED,), ORANGE),
    "Not delivered": ((EmailStatus.SEND_FAILED, EmailStatus.SEND_UNKNOWN, EmailStatus.SUPPRESSED), PURPLE),
}
# A failed email's cause, from the leading words of its failure_reason (campaigns.generation, .validation,
# .sandbox and .tasks write them); several problems are joined by "; ", and the first one names the cause.
FAILURE_CAUSES = (
    ("no recommendations", "No recommendations"),
    ("does not mention", "Did not name every pick"),
    ("names titles that were not recommended", "Named titles not picked"),
    ("missing subject", "Subject missing"),
    ("subject must be", "Subject length"),
    ("body must be", "Body length"),
    ("contains template residue", "Template residue"),
    ("blocked by the tenant's Bedrock guardrail", "Blocked by the guardrail"),
    ("guardrail screening failed", "Guardrail screening failed"),
    ("model call failed", "Model call failed"),
    ("template", "Prompt template problem"),
    ("not written", "Chunk not written"),
    ("not regenerated", "Regeneration failed"),
)
OTHER_CAUSE_CHARS = 40  # an unknown reason is grouped by its first words
# What each task's model calls are for, in a marketer's words; a campaign's own task name is its email body, and
# any other task is shown by its name.
TASK_NAMES = {
    "guardrail_screen": "Guardrail screening",
    "route_classify": "Dynamic routing (labels, embeddings)",
    "judge": "Draft judge",
    "shorten": "Plot shortening",
    "subject": "Subject-line variants",
}


class BadFilter(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    since: date
    days: int
    campaign: Campaign | None = None
    run: CampaignRun | None = None

    def emails(self) -> QuerySet:
        start = datetime.combine(self.since, datetime.min.time(), tzinfo=timezone.get_current_timezone())
        emails = GeneratedEmail.objects.filter(created_at__gte=start)
        if self.run is not None:
            return emails.filter(run=self.run)
        return emails if self.campaign is None else emails.filter(run__campaign=self.campaign)

    def calls(self) -> QuerySet:
        """The model calls (every task: the emails, their screening, routing, the judge...) in the selection."""
        start = datetime.combine(self.since, datetime.min.time(), tzinfo=timezone.get_current_timezone())
        calls = LLMCall.objects.filter(created_at__gte=start)
        if self.run is not None:
            return calls.filter(run_id=self.run.pk)
        return calls if self.campaign is None else calls.filter(campaign_id=self.campaign.pk)


def _number(params, name: str) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise BadFilter(f"{name} must be a whole number, not {raw[:40]!r}")
    return int(raw)


def dashboard_filters(params) -> Filters:
    """The filters from the query string: ?days=, ?campaign=, ?run= (a run, or a campaign, outside the scope is a
    404). With a run and no days, the range starts on the day the run was created."""
    days, run_id, campaign_id = (_number(params, name) for name in ("days", "run", "campaign"))
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise BadFilter(f"days must be from 1 to {MAX_DAYS}, not {days}")
    run = campaign = None
    if run_id is not None:
        run = CampaignRun.objects.select_related("campaign").filter(pk=run_id).first()
        if run is None:
            raise Http404("No such run.")
        campaign = run.campaign
    elif campaign_id is not None:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise Http404("No such campaign.")
    today = timezone.localdate()
    if days is None and run is not None:
        days = min(MAX_DAYS, (today - timezone.localdate(run.created_at)).days + 1)
    days = days or DEFAULT_DAYS
    return Filters(since=today - timedelta(days=days - 1), days=days, campaign=campaign, run=run)


def headline(emails: QuerySet) -> dict:
    figures = emails.aggregate(
        total=Count("pk"),
        waiting=Count("pk", filter=Q(status=EmailStatus.DRAFT)),
        approved=Count("pk", filter=Q(status__in=APPROVED)),
        edited=Count("pk", filter=Q(status__in=APPROVED, edited=True)),
        rejected=Count("pk", filter=Q(status=EmailStatus.REJECTED)),
        sent=Count("pk", filter=Q(status=EmailStatus.SENT)),
        failed=Count("pk", filter=Q(status=EmailStatus.FAILED)),
        input_tokens=Sum("input_tokens", default=0),
        output_tokens=Sum("output_tokens", default=0),
        cost=Sum("cost_usd", default=Decimal(0)),
    )
    decided = figures["approved"] + figures["rejected"]
    figures.update(
        decided=decided,
        approval_rate=_share(figures["approved"], decided),
        rejection_rate=_share(figures["rejected"], decided),
        failure_rate=_share(figures["failed"], figures["total"]),
        edits_per_approved=figures["edited"] / figures["approved"] if figures["approved"] else None,
        cost_per_email=figures["cost"] / figures["total"] if figures["total"] else None,
        tokens=figures["input_tokens"] + figures["output_tokens"],
    )
    return figures


def _share(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def status_by_day(emails: QuerySet) -> dict[tuple[date, str], int]:
    rows = emails.annotate(day=TruncDate("created_at")).values("day", "status").annotate(n=Count("pk"))
    return {(row["day"], row["status"]): row["n"] for row in rows.order_by()}


def top_reject_reasons(emails: QuerySet, limit: int = 6) -> list[tuple[str, int]]:
    rows = emails.filter(status=EmailStatus.REJECTED).values("reject_reason").annotate(n=Count("pk"))
    return [(row["reject_reason"] or "(no reason)", row["n"]) for row in rows.order_by("-n", "reject_reason")[:limit]]


def failure_causes(emails: QuerySet, limit: int = 8) -> list[tuple[str, int]]:
    cause = Case(
        *(When(failure_reason__startswith=prefix, then=Value(label)) for prefix, label in FAILURE_CAUSES),
        default=Substr("failure_reason", 1, OTHER_CAUSE_CHARS),
        output_field=CharField(),
    )
    rows = emails.filter(status=EmailStatus.FAILED).annotate(cause=cause).values("cause").annotate(n=Count("pk"))
    return [(row["cause"] or "(no reason)", row["n"]) for row in rows.order_by("-n", "cause")[:limit]]


def usage_by_model(emails: QuerySet) -> list[dict]:
    rows = emails.values("model_key").annotate(
        emails=Count("pk"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost_usd"),
    )
    rows = rows.order_by("-cost", "model_key")
    return [
        {**row, "model_key": row["model_key"] or "(none)", "per_email": row["cost"] / row["emails"]} for row in rows
    ]


def cost_by_day_and_model(emails: QuerySet) -> dict[tuple[date, str], Decimal]:
    rows = emails.annotate(day=TruncDate("created_at")).values("day", "model_key").annotate(cost=Sum("cost_usd"))
    return {(row["day"], row["model_key"] or "(none)"): row["cost"] for row in rows.order_by()}


def cost_by_campaign(emails: QuerySet, limit: int = 10) -> list[dict]:
    rows = emails.values("run__campaign_id", "run__campaign__name").annotate(emails=Count("pk"), cost=Sum("cost_usd"))
    rows = rows.order_by("-cost", "run__campaign__name")[:limit]
    return [
        {"campaign": row["run__campaign__name"], "emails": row["emails"], "cost": row["cost"],
         "per_email": row["cost"] / row["emails"]}
        for row in rows
    ]  # fmt: skip


def spend_by_task(calls: QuerySet) -> list[dict]:
    """The model spend of the selection by task, dearest first: every call counted, the emails' own and the
    ones around them (screening, routing, the judge, shortening, subjects), failed calls included (they are paid)."""
    rows = calls.values("task").annotate(
        calls=Count("pk"),
        failed=Count("pk", filter=Q(ok=False)),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost_usd"),
        email_task=Exists(Campaign.objects.filter(task=OuterRef("task"))),  # a campaign's own: its email body
    )
    return [
        {**row, "name": TASK_NAMES.get(row["task"]) or ("Email body" if row["email_task"] else row["task"])}
        for row in rows.order_by("-cost", "task")
    ]


def coverage(emails: QuerySet, items: QuerySet) -> tuple[int, int]:
    """(catalog items picked for at least one of these emails, items in the catalog), counted in the database: a
    pick is an element {id, title} of an email's `items`, matched to the item of its tenant."""
    catalog = items.count()
    if not catalog:
        return 0, 0
    email_ids, params = emails.values("pk").query.sql_with_params()
    if connection.vendor == "postgresql":
        picks = "jsonb_array_elements(CASE jsonb_typeof(e.items) WHEN 'array' THEN e.items ELSE '[]' END) AS pick"
        pick_id = "pick.value ->> 'id'"
    else:  # SQLite, the embedded default
        picks, pick_id = "json_each(e.items) AS pick", "json_extract(pick.value, '$.id')"
    sql = (
        f"SELECT COUNT(DISTINCT i.id) FROM {GeneratedEmail._meta.db_table} e, {picks}, {Item._meta.db_table} i "
        f"WHERE i.tenant_id = e.tenant_id AND i.external_id = {pick_id} AND e.id IN ({email_ids})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0], catalog


def day_axis(filters: Filters) -> list[date]:
    today = timezone.localdate()
    return [filters.since + timedelta(days=i) for i in range((today - filters.since).days + 1)]


def status_chart(days: list[date], counts: dict[tuple[date, str], int]):
    series = [
        charts.Series(group, [sum(counts.get((day, s), 0) for s in statuses) for day in days], colour)
        for group, (statuses, colour) in STATUS_GROUPS.items()
    ]
    return charts.stacked_columns("Emails written per day, by status", days, series)


def cost_chart(days: list[date], costs: dict[tuple[date, str], Decimal], models: list[str]):
    series = [
        charts.Series(model, [float(costs.get((day, model)) or 0) for day in days], colour)
        for model, colour in charts.palette(models)
    ]
    return charts.stacked_columns("Cost per day, by model", days, series, fmt=charts.dollars)


def dashboard_context(filters: Filters) -> dict:
    emails = filters.emails()
    figures = headline(emails)
    context = {"filters": filters, "figures": figures, "ranges": RANGES, "scope_name": scope_name(filters)}
    context["paused_tenants"] = paused_tenants()
    context["runs"] = CampaignRun.objects.select_related("campaign").order_by("-pk")[:50]
    context["campaigns"] = Campaign.objects.order_by("name")[:200]
    if not figures["total"]:
        return context
    days = day_axis(filters)
    models = usage_by_model(emails)
    by_campaign = cost_by_campaign(emails)
    reasons, causes = top_reject_reasons(emails), failure_causes(emails)
    items = Item.objects.all() if filters.campaign is None else Item.objects.filter(tenant=filters.campaign.tenant_id)
    picked, catalog = coverage(emails, items)
    tokens = [(m["model_key"], m["input_tokens"] + m["output_tokens"]) for m in models]
    tasks = spend_by_task(filters.calls())
    context.update(
        models=models,
        tasks=tasks,
        calls_cost=sum((row["cost"] for row in tasks), Decimal(0)),
        by_campaign=by_campaign,
        reasons=reasons,
        causes=causes,
        picked=picked,
        catalog=catalog,
        coverage=_share(picked, catalog),
        status_chart=status_chart(days, status_by_day(emails)),
        cost_chart=cost_chart(days, cost_by_day_and_model(emails), [m["model_key"] for m in models]),
        tokens_chart=charts.bars("Tokens by model (input + output)", tokens, colour=BLUE),
        campaign_chart=charts.bars(
            "Cost per email, by campaign",
            sorted(((row["campaign"], float(row["per_email"])) for row in by_campaign), key=lambda r: -r[1]),
            fmt=charts.dollars,
            colour=GREEN,
        ),
        reasons_chart=reasons and charts.bars("Top rejection reasons", reasons, colour=VERMILLION),
        causes_chart=causes and charts.bars("Failures by cause", causes, colour=ORANGE),
    )
    return context


def paused_tenants() -> list[Tenant]:
    """The tenants in scope whose sending the complaint guard paused: the dashboard says so on top."""
    paused = Tenant.objects.filter(sending_paused_at__isnull=False).order_by("name")
    ids = getattr(current_tenant(), "ids", None)
    return list(paused if ids is None else paused.filter(pk__in=ids))


def scope_name(filters: Filters) -> str:
    """The tenant the figures are for: the campaign's, the chosen one, the user's only one, or all of them."""
    if filters.campaign is not None:
        return Tenant.objects.get(pk=filters.campaign.tenant_id).name
    scope = current_tenant()
    ids = getattr(scope, "ids", None)
    if ids is None:
        return "All tenants"
    if len(ids) == 1:
        return Tenant.objects.filter(pk__in=ids).values_list("name", flat=True).first() or "No tenant"
    return "All your tenants" if ids else "No tenant"


def dashboard_view(request):
    """The admin's index with the figures; a bad filter is a 400 that says what was wrong, above the default view."""
    try:
        filters, problem = dashboard_filters(request.GET), None
    except BadFilter as exc:
        filters, problem = dashboard_filters({}), f"{exc}. For example: ?days=30&run=12"
    context = {"title": "Dashboard", "filter_problem": problem, **dashboard_context(filters)}
    response = admin.site.index(request, extra_context=context)
    response.status_code = 400 if problem else 200
    return response


dashboard = admin.site.admin_view(dashboard_view)
