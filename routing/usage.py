"""What model calls cost a tenant, summed: by model (the one that answered), campaign, run, task or day. The
dashboard and the API's usage endpoint read these figures; a tenant's sums hold only its own records."""

from datetime import UTC, datetime

from django.db.models import Avg, Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf, TruncDate

from routing.models import LLMCall

GROUPS = {
    "model": Coalesce(NullIf("answered_by", Value("")), "model_key"),
    "campaign": F("campaign_id"),
    "run": F("run_id"),
    "task": F("task"),
    "day": TruncDate("created_at", tzinfo=UTC),
}


def usage_by(
    tenant,
    group: str = "model",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    campaign_id: int | None = None,
) -> list[dict]:
    """One row per model, campaign, run, task or day (`group`), most costly first (days in order): calls, failed
    calls, tokens in, out, cache-read and cache-write, cost in dollars and mean latency; `since`/`until` bound the
    calls' times (until excluded), `campaign_id` keeps one campaign's calls. Calls made for no campaign (previews,
    tests) are the campaign None."""
    if group not in GROUPS:
        raise ValueError(f"usage is grouped by one of {', '.join(GROUPS)}, not {group!r}")
    calls = LLMCall.objects.for_tenant(tenant)
    if campaign_id is not None:
        calls = calls.filter(campaign_id=campaign_id)
    if since is not None:
        calls = calls.filter(created_at__gte=since)
    if until is not None:
        calls = calls.filter(created_at__lt=until)
    rows = (
        calls.annotate(key=GROUPS[group])
        .values("key")
        .annotate(
            calls=Count("pk"),
            failed=Count("pk", filter=Q(ok=False)),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cache_read_tokens=Sum("cache_read_tokens"),
            cache_write_tokens=Sum("cache_write_tokens"),
            cost_usd=Sum("cost_usd"),
            latency_ms=Avg("latency_ms"),
        )  # fmt: skip
        .order_by("key" if group == "day" else "-cost_usd", "key")
    )
    return [{group: row.pop("key"), **row, "latency_ms": round(row["latency_ms"] or 0)} for row in rows]
