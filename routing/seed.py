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


# Tasks with their own routes (issue 13), on every plan's cheap model and without a fallback: a failed shortening
# falls back to the truncated plot, failed subject variants to the body's own subject. (plan, backend, task, model,
# answer budget.)
SHORTEN_TASK, SUBJECT_TASK = "shorten", "subject"
TASK_ROUTES = [
    (slug, "bedrock", task, "bedrock/nova-micro", tokens)
    for slug in ("basic", "pro")
    for task, tokens in ((SHORTEN_TASK, 200), (SUBJECT_TASK, 300))
] + [(slug, "local", task, "local/qwen2.5-1.5b", tokens) for slug in ("basic", "pro")
     for task, tokens in ((SHORTEN_TASK, 200), (SUBJECT_TASK, 300))]  # fmt: skip


def seed_routes(model_entry, plan, plan_route, routes) -> None:
    """Write these routes, (plan, backend, task, model, fallback, answer budget), with these model classes (historical
    ones in a migration) on the plans and models that exist; a route an operator already wrote is left alone."""
    entries = {entry.key: entry for entry in model_entry.objects.all()}
    plans = {row.slug: row for row in plan.objects.all()}
    for slug, backend, task, model, fallback, max_tokens in routes:
        if slug in plans and model in entries:
            plan_route.objects.get_or_create(
                plan=plans[slug], backend=backend, task=task,
                defaults={"model": entries[model], "fallback": entries.get(fallback), "max_output_tokens": max_tokens},
            )  # fmt: skip


def seed_task_routes(model_entry, plan, plan_route) -> None:
    """The task routes above (migration 0012), without a fallback."""
    routes = [(slug, backend, task, model, None, tokens) for slug, backend, task, model, tokens in TASK_ROUTES]
    seed_routes(model_entry, plan, plan_route, routes)


def seed_if_empty(sender=None, **kwargs) -> None:
    """post_migrate: a catalog emptied by a flush (a transactional test's teardown) is written again."""
    from routing.models import DynamicRoute, ModelEntry, Plan, PlanRoute, ReferencePrompt

    using = kwargs.get("using", "default")
    if not ModelEntry.objects.using(using).exists() and not Plan.objects.using(using).exists():
        seed(ModelEntry, Plan, PlanRoute)
        seed_dynamic(ModelEntry, Plan, PlanRoute, DynamicRoute, ReferencePrompt)
        seed_judge(ModelEntry, Plan, PlanRoute)
        seed_task_routes(ModelEntry, Plan, PlanRoute)


# Dynamic routing (routing.dynamic), a Pro option: Titan Text Embeddings V2 for the semantic router, Bedrock's
# default Nova prompt router (priced, for its reservation, as its larger model; the account is the platform's, to
# be edited), the Pro plan's routes per label (a label without one, "complex" or "unsure", takes the plan's route),
# the classifier's route (task ROUTE_TASK) and the reference set the semantic router compares prompts with.
NOVA_ROUTER_ARN = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/amazon.nova:1"
DYNAMIC_MODELS = [
    _model("bedrock/titan-embed-v2", "bedrock", "amazon.titan-embed-text-v2:0", "0.00002", "0", "small",
           context=8_192, caching=False, batch=False),
    _model("bedrock/nova-router", "bedrock", NOVA_ROUTER_ARN, "0.0008", "0.0032", "large",
           context=300_000, caching=False, batch=False, router_arn=NOVA_ROUTER_ARN),
]  # fmt: skip
ROUTE_TASK = "route_classify"
CLASSIFIER_ROUTES = [("pro", "bedrock", ROUTE_TASK, "bedrock/nova-micro", "bedrock/nova-lite", 20)]
DYNAMIC_ROUTES = [
    ("pro", "bedrock", "simple", "bedrock/nova-lite", "bedrock/claude-3-haiku"),
    ("pro", "bedrock", "router", "bedrock/nova-router", None),
]
REFERENCES = {
    "simple": [
        "Write a short, friendly marketing email recommending the titles below. Keep it to a few sentences.",
        "Send the customer a quick note about new movies picked for them. Plain and warm.",
        "A brief email with this week's picks for the customer. One sentence per movie, then sign off.",
        "Recommend these movies in a short email. Start with a greeting and end with the sign-off.",
        "Write a simple newsletter blurb suggesting the films below to the subscriber.",
        "Tell the customer about the titles we picked for them, in a casual two-paragraph email.",
        "Short email: greet the customer by name, list why they may like each movie, sign off.",
        "A friendly reminder email about movies the customer might enjoy tonight. Keep it light and short.",
        "Write a plain marketing email about the recommended items. Subject line and body only.",
        "Draft a concise email inviting the customer to watch the picks below.",
    ],
    "complex": [
        "Write the email in French for French-speaking customers and in German for German-speaking ones, "
        "matching the locale; keep the titles in their original language.",
        "Write a bilingual email: each paragraph first in Spanish, then in English, with a formal register.",
        "Follow our brand voice guide closely: witty but never sarcastic, warm, confident, second person, short "
        "sentences, no exclamation marks, no slang, and a playful closing line that fits the season.",
        "Write a long-form editorial newsletter with an introduction, one section per movie with a heading, a "
        "paragraph on themes, a paragraph comparing the picks, and a closing essay of at least 300 words.",
        "Constraints: at most 120 words; never mention prices; exactly one question; no emoji; mention each "
        "title twice; use British spelling; avoid the words 'amazing' and 'awesome'; end with a P.S. line; "
        "do not use the customer's last name; keep the subject under 45 characters.",
        "Adapt the tone to the customer's age: formal for over 60, relaxed for under 30; reference their "
        "favourite genre; write in their locale's language and use local date formats.",
        "Write in Japanese using polite keigo for customers in Japan, and in Italian otherwise for Italy; the "
        "subject line must be in the same language as the body.",
        "Our luxury brand persona is an elegant, understated concierge: empathetic, refined vocabulary, no hard "
        "sell, evoke atmosphere and craft, and weave the picks into one narrative rather than a list.",
        "Rules: 1. open with a hook about the weekend; 2. one paragraph per title; 3. each paragraph must name "
        "the genre; 4. include a call to action; 5. no superlatives; 6. no more than two sentences each; "
        "7. keep reading level at grade 6; 8. include an accessibility note; 9. finish with a sign-off.",
        "Translate the customer's preferences into a personalised story in Portuguese, with a humorous tone, "
        "and add a short English summary at the end.",
    ],
}


def seed_dynamic(model_entry, plan, plan_route, dynamic_route, reference_prompt) -> None:
    """Write the dynamic-routing seed with these model classes; rows that exist are left as the operator edited
    them, and the reference set only when there is none."""
    entries = {fields["key"]: model_entry.objects.get_or_create(key=fields["key"], defaults=fields)[0]
               for fields in DYNAMIC_MODELS}  # fmt: skip
    entries.update({entry.key: entry for entry in model_entry.objects.all()})
    seed_routes(model_entry, plan, plan_route, CLASSIFIER_ROUTES)
    plans = {row.slug: row for row in plan.objects.all()}
    for slug, backend, label, model, fallback in DYNAMIC_ROUTES:
        if slug in plans and model in entries:
            dynamic_route.objects.get_or_create(
                plan=plans[slug], backend=backend, label=label,
                defaults={"model": entries[model], "fallback": entries.get(fallback)},
            )  # fmt: skip
    if not reference_prompt.objects.exists():
        reference_prompt.objects.bulk_create(
            reference_prompt(label=label, text=text) for label, texts in REFERENCES.items() for text in texts
        )


# The draft judge (campaigns.judge): its own route on every plan, on the cheapest small model (a Pro plan's too: a
# tone check needs no large model), with a short answer budget (a score and one line of reasons).
JUDGE_TASK = "judge"
JUDGE_ROUTES = [(slug, backend, JUDGE_TASK, model, fallback, 120)
                for slug in ("basic", "pro")
                for backend, model, fallback in (("bedrock", "bedrock/nova-micro", "bedrock/nova-lite"),
                                                 ("local", "local/qwen2.5-1.5b", None))]  # fmt: skip


def seed_judge(model_entry, plan, plan_route) -> None:
    """The judge's routes (migration 0011)."""
    seed_routes(model_entry, plan, plan_route, JUDGE_ROUTES)
