"""Routing's data: the model catalog and the plans (edited by platform staff in the admin, read through the
per-process cache in routing.catalog), the monthly spend per tenant, and one usage record per model call."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from routing.catalog import ANY_TASK
from tenants.scoping import TenantOwned


class Tier(models.TextChoices):
    """A model's class of cost and quality. A plan on the small tier may use only small models; a plan on the
    large tier may use both."""

    SMALL = "small", "Small (Basic)"
    LARGE = "large", "Large (Pro)"


def tier_allows(plan_tier: str, model_tier: str) -> bool:
    return model_tier == Tier.SMALL or plan_tier == Tier.LARGE


PRICE = {"max_digits": 14, "decimal_places": 8, "default": Decimal(0)}


class ModelEntry(models.Model):
    """One model we can route to, with its prices (USD per 1,000 tokens, on-demand, in the platform's region)."""

    key = models.CharField(max_length=100, unique=True, help_text='Our stable name, e.g. "bedrock/nova-lite".')
    provider = models.CharField(max_length=20, choices=[("bedrock", "Amazon Bedrock"), ("local", "Local model")])
    model_id = models.CharField(max_length=300, help_text="The model or inference-profile id (or the local file).")
    router_arn = models.CharField(
        max_length=300, blank=True,
        help_text="A Bedrock prompt-router ARN: calls go to the router, and are priced at the model it invoked.",
    )  # fmt: skip
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.SMALL)
    input_per_1k = models.DecimalField(**PRICE)
    output_per_1k = models.DecimalField(**PRICE)
    cache_read_per_1k = models.DecimalField(**PRICE)
    cache_write_per_1k = models.DecimalField(**PRICE)
    batch_input_per_1k = models.DecimalField(**PRICE)
    batch_output_per_1k = models.DecimalField(**PRICE)
    context_window = models.PositiveIntegerField(default=0, help_text="Tokens; 0: unknown.")
    supports_caching = models.BooleanField(default=False)
    supports_batch = models.BooleanField(default=False, help_text="Bedrock batch inference accepts it.")
    max_tokens = models.PositiveIntegerField(default=700, help_text="Answer budget per email, unless a route says.")
    temperature = models.FloatField(default=0.7)
    enabled = models.BooleanField(default=True, help_text="A disabled model is never routed to.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "catalog model"
        ordering = ["key"]

    def __str__(self):
        return self.key

    def clean(self):
        if (
            self.router_arn
            and ":prompt-router/" not in self.router_arn
            and "default-prompt-router/" not in self.router_arn
        ):
            raise ValidationError(
                {"router_arn": "A Bedrock prompt-router ARN (…:prompt-router/… or …:default-prompt-router/…)."}
            )


class Plan(models.Model):
    """What a tenant pays for: its tier of models, the model per task, and per month an email quota and a budget."""

    slug = models.SlugField(max_length=50, unique=True, help_text="What Tenant.plan holds, e.g. basic.")
    name = models.CharField(max_length=100)
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.SMALL)
    monthly_email_quota = models.PositiveIntegerField(default=10_000)
    monthly_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Model spend per month. Blank: no limit."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name


class PlanRoute(models.Model):
    """The model that serves one task on one plan and backend, its fallback (same tier) and its answer budget."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="routes")
    backend = models.CharField(max_length=20, choices=[("bedrock", "Amazon Bedrock"), ("local", "Local model")])
    task = models.CharField(max_length=50, default=ANY_TASK, help_text=f'"{ANY_TASK}": every task without a route.')
    model = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="routes")
    fallback = models.ForeignKey(
        ModelEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="fallback_routes",
        help_text="Answers when the model is throttled or failing after its retries; the same tier.",
    )  # fmt: skip
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True, help_text="Blank: the model's.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "backend", "task"], name="one_route_per_plan_task")]

    def __str__(self):
        return f"{self.plan} {self.backend} {self.task} → {self.model}"

    def clean(self):
        problems = {}
        for name in ("model", "fallback"):
            entry = getattr(self, name, None) if getattr(self, f"{name}_id") else None
            if entry is None:
                continue
            if entry.provider != self.backend:
                problems[name] = f"{entry} is a {entry.provider} model, not {self.backend}."
            elif self.plan_id and not tier_allows(self.plan.tier, entry.tier):
                problems[name] = (
                    f"{entry} is a {entry.tier}-tier model; plan {self.plan} is on the {self.plan.tier} tier."
                )
        if self.fallback_id and self.model_id and not problems:
            if self.fallback_id == self.model_id:
                problems["fallback"] = "A model cannot be its own fallback."
            elif self.fallback.tier != self.model.tier:
                problems["fallback"] = f"The fallback must be of the model's tier ({self.model.tier})."
        if problems:
            raise ValidationError(problems)


class RouteLabel(models.TextChoices):
    """What a prompt needs (routing.dynamic): a label with a DynamicRoute goes there; any other, "unsure" and no
    close match go to the plan's route (the default)."""

    SIMPLE = "simple", "Simple: a short, standard email"
    COMPLEX = "complex", "Complex: long, multilingual, tone-heavy or many constraints"
    ROUTER = "router", "Bedrock prompt router (the prompt_router strategy)"


class DynamicRoute(models.Model):
    """On a plan and backend, the model for prompts a dynamic strategy labelled so; same tier rule as PlanRoute."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="dynamic_routes")
    backend = models.CharField(max_length=20, choices=[("bedrock", "Amazon Bedrock"), ("local", "Local model")])
    label = models.CharField(max_length=20, choices=RouteLabel.choices)
    model = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="dynamic_routes")
    fallback = models.ForeignKey(
        ModelEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="dynamic_fallback_routes"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "backend", "label"], name="one_dynamic_route_per_label")]

    def __str__(self):
        return f"{self.plan} {self.backend} {self.label} → {self.model}"

    clean = PlanRoute.clean


class ReferencePrompt(models.Model):
    """One example of what prompts of a label look like: the semantic router's reference set (platform data)."""

    label = models.CharField(max_length=20, choices=[c for c in RouteLabel.choices if c[0] != RouteLabel.ROUTER])
    text = models.TextField()
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label", "pk"]

    def __str__(self):
        return f"{self.label}: {self.text[:60]}"


class LLMCall(TenantOwned):
    task = models.CharField(max_length=50)
    model_key = models.CharField(max_length=100)
    provider = models.CharField(max_length=20)
    model_id = models.CharField(max_length=200)
    invoked_model_id = models.CharField(max_length=300, blank=True)
    route_reason = models.CharField(max_length=300)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    # The catalog model that answered and was priced: the routed one, its fallback, or a prompt router's pick.
    answered_by = models.CharField(max_length=100, blank=True)
    # The campaign and run it was made for (none for a preview or a test): plain ids, not keys, so that the usage
    # and cost records outlive a campaign or run someone deletes.
    campaign_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    run_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # The routing decision behind the call (routing.dynamic): strategy, label, the embedding or classifier model
    # that labelled it and how long that took, and the whole time, labelling and generation (latency_ms) included.
    strategy = models.CharField(max_length=20, blank=True)
    route_label = models.CharField(max_length=20, blank=True)
    classified_by = models.CharField(max_length=100, blank=True)
    classify_ms = models.PositiveIntegerField(default=0)
    total_ms = models.PositiveIntegerField(default=0)
    # When the call was made (set by the gateway; records are saved in bulk later, so not at insert time).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "LLM call"

    def __str__(self):
        return f"{self.model_key} {self.input_tokens}+{self.output_tokens} tokens ${self.cost_usd}"


class OverrideChange(models.Model):
    """A change of a tenant's model overrides by platform staff: who, when, why, from what to what. A platform
    record (staff only), not the tenant's."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="override_changes")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    changed_by = models.CharField(max_length=150)
    reason = models.TextField()
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self):
        return f"{self.tenant} overrides by {self.changed_by} at {self.changed_at:%Y-%m-%d %H:%M}"


class SpendUsage(models.Model):
    """A tenant's model spend in one month, in dollars: `spent` settled by the calls made, `reserved` held by calls
    (and chunks of calls) in flight at their estimated cost. A call may start only if spent + reserved + its
    estimate stays within the budget (routing.budget, under the row's lock)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="spend_usage")
    month = models.DateField(help_text="The first day of the month.")
    spent_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="one_spend_usage_per_month")]

    def __str__(self):
        return f"{self.tenant} {self.month:%Y-%m}: ${self.spent_usd:.2f} spent"


class SpendHold(models.Model):
    """One reservation counted in its month's `reserved_usd`, until its call or chunk settles it, or until it
    expires: a worker killed mid-chunk never settles, and its dollars come back when the hold outlives any task
    (the hard time limit, and a minute)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="spend_holds")
    month = models.DateField()
    amount_usd = models.DecimalField(max_digits=14, decimal_places=8)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "month", "expires_at"], name="spend_hold_expiry")]

    def __str__(self):
        return f"{self.tenant} {self.month:%Y-%m}: ${self.amount_usd:.4f} held until {self.expires_at:%H:%M}"
