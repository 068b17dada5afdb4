"""The catalog and plans the product starts with (the seed migration writes them, and an empty catalog is written
again after `migrate` or a test database's flush). Plain data only: the migration reads it with historical models.
Prices: USD per 1,000 tokens, on-demand, us-east-1; prompt-cache reads at a tenth of the input price and writes at
1.25 times it; batch inference at half the on-demand price."""

from decimal import Decimal as D


def _model(key, provider, model_id, input_, output, tier, *, context, caching, batch, **extra):
    return {
        "key": key, "provider": provider, "model_id": model_id, "tier": tier,
        "input_per_1k": D(input_), "output_per_1k": D(output),
        "cache_read_per_1k": D(input_) * D("0.1"), "cache_write_per_1k": D(input_) * D("1.25"),
        "batch_input_per_1k": D(input_) / 2 if batch else D(0), "batch_output_per_1k": D(output) / 2 if batch else D(0),
        "context_window": context, "supports_caching": caching, "supports_batch": batch, **extra,
    }  # fmt: skip


MODELS = [
    _model("bedrock/nova-micro", "bedrock", "us.amazon.nova-micro-v1:0", "0.000035", "0.00014", "small",
           context=128_000, caching=True, batch=True),
    _model("bedrock/nova-lite", "bedrock", "us.amazon.nova-lite-v1:0", "0.00006", "0.00024", "small",
           context=300_000, caching=True, batch=True),
    _model("bedrock/nova-pro", "bedrock", "us.amazon.nova-pro-v1:0", "0.0008", "0.0032", "large",
           context=300_000, caching=True, batch=True),
    _model("bedrock/claude-3-haiku", "bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "0.00025", "0.00125",
           "small", context=200_000, caching=False, batch=True),
    _model("bedrock/claude-3.5-sonnet", "bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "0.003", "0.015",
           "large", context=200_000, caching=False, batch=True),
    _model("bedrock/claude-3.5-haiku", "bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "0.0008", "0.004",
           "small", context=200_000, caching=True, batch=True),
    _model("bedrock/claude-3.7-sonnet", "bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", "0.003", "0.015",
           "large", context=200_000, caching=True, batch=True),
    # Measured: cooler and shorter avoids runaway answers.
    _model("local/qwen2.5-1.5b", "local", "qwen2.5-coder-1.5b-instruct-q4_k_m", "0", "0", "small",
           context=32_768, caching=False, batch=False, max_tokens=400, temperature=0.4),
]  # fmt: skip

# slug, name, tier, email quota, budget; routes: (backend, task, model, fallback, max output tokens).
PLANS = [
    {"slug": "basic", "name": "Basic", "tier": "small", "monthly_email_quota": 10_000, "monthly_budget_usd": D("50"),
     "routes": [("bedrock", "*", "bedrock/nova-lite", "bedrock/claude-3-haiku", None),
                ("local", "*", "local/qwen2.5-1.5b", None, None)]},
    {"slug": "pro", "name": "Pro", "tier": "large", "monthly_email_quota": 10_000, "monthly_budget_usd": D("500"),
     "routes": [("bedrock", "*", "bedrock/claude-3.7-sonnet", "bedrock/nova-pro", None),
                ("local", "*", "local/qwen2.5-1.5b", None, None)]},
]  # fmt: skip


def seed(model_entry, plan, plan_route) -> None:
    """Write the seed catalog and plans with these model classes (historical ones in a migration); rows that
    exist are left as the operator edited them."""
    entries = {}
    for fields in MODELS:
        entries[fields["key"]], _ = model_entry.objects.get_or_create(key=fields["key"], defaults=fields)
    for fields in PLANS:
        fields = dict(fields)
        routes = fields.pop("routes")
        row, created = plan.objects.get_or_create(slug=fields["slug"], defaults=fields)
        for backend, task, model, fallback, max_tokens in routes if created else ():
            plan_route.objects.get_or_create(
                plan=row, backend=backend, task=task,
                defaults={"model": entries[model], "fallback": entries.get(fallback), "max_output_tokens": max_tokens},
            )  # fmt: skip


def seed_if_empty(sender=None, **kwargs) -> None:
    """post_migrate: a catalog emptied by a flush (a transactional test's teardown) is written again."""
    from routing.models import ModelEntry, Plan, PlanRoute

    using = kwargs.get("using", "default")
    if not ModelEntry.objects.using(using).exists() and not Plan.objects.using(using).exists():
        seed(ModelEntry, Plan, PlanRoute)
