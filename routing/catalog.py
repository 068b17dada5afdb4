"""The models we can route to and the plans, as the gateway reads them: value objects (ModelSpec, PlanSpec) from
the catalog in the database (routing.models: ModelEntry, Plan, PlanRoute), cached per process; prices in USD per
1,000 tokens; and the lookup of a model by any id Bedrock names it with, so that
a call a prompt router answered is priced at the model that answered."""

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class ModelSpec:
    """A catalog entry as the gateway uses it: a value, read from routing.ModelEntry through the cache below."""

    key: str  # our stable name, stored on usage records
    provider: str  # "bedrock" or "local"
    model_id: str  # what is invoked: the model or inference-profile id, or a prompt router's ARN
    input_per_1k: Decimal
    output_per_1k: Decimal
    tier: str  # "small" or "large": which plans may use it (routing.models.tier_allows)
    max_tokens: int = 700  # answer budget per email
    temperature: float = 0.7
    batch: bool = False  # Bedrock batch inference (CreateModelInvocationJob) accepts it
    cache_read_per_1k: Decimal | None = None  # None: a tenth of the input price
    cache_write_per_1k: Decimal | None = None  # None: 1.25 times the input price
    batch_input_per_1k: Decimal | None = None  # None: half the on-demand price
    batch_output_per_1k: Decimal | None = None
    context_window: int = 0
    caching: bool = False
    enabled: bool = True

    def cost(self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0,
             batch: bool = False) -> Decimal:  # fmt: skip
        """`input_tokens` excludes the prompt cache's reads and writes, as Converse reports them. `batch`: the
        price of a batch inference record (no prompt cache there: every input token at the batch input price)."""
        if batch:
            batch_in = _or(self.batch_input_per_1k, self.input_per_1k * BATCH_PRICE)
            batch_out = _or(self.batch_output_per_1k, self.output_per_1k * BATCH_PRICE)
            return (batch_in * (input_tokens + cache_read + cache_write) + batch_out * output_tokens) / 1000
        read = _or(self.cache_read_per_1k, self.input_per_1k * CACHE_READ)
        write = _or(self.cache_write_per_1k, self.input_per_1k * CACHE_WRITE)
        return (self.input_per_1k * input_tokens + read * cache_read + write * cache_write
                + self.output_per_1k * output_tokens) / 1000  # fmt: skip


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


CACHE_READ, CACHE_WRITE = Decimal("0.1"), Decimal("1.25")
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.")  # cross-region inference profiles
BATCH_PRICE = Decimal("0.5")  # Bedrock bills batch inference at half the on-demand price for these models
CACHE_SECONDS = 30.0  # how long a process trusts its copy of the catalog and plans (see `snapshot`)


# Bedrock Guardrails, USD per 1,000 text units (a unit: up to 1,000 characters), by the policy ApplyGuardrail's
# `usage` counts them under; word filters and the free sensitive-information units cost nothing.
GUARDRAIL_KEY = "bedrock/guardrail"  # the usage records' model key for a screening
GUARDRAIL_PRICES_PER_1K_UNITS = {
    "topicPolicyUnits": Decimal("0.15"), "contentPolicyUnits": Decimal("0.15"),
    "contextualGroundingPolicyUnits": Decimal("0.10"), "sensitiveInformationPolicyUnits": Decimal("0.10"),
}  # fmt: skip


def guardrail_cost(usage: dict) -> Decimal:
    return sum((price * int(usage.get(name) or 0) / 1000 for name, price in GUARDRAIL_PRICES_PER_1K_UNITS.items()),
               Decimal(0))  # fmt: skip


ANY_TASK = "*"  # a plan route for every task without its own


class UnknownModel(KeyError):
    pass


@dataclass(frozen=True)
class PlanRouteSpec:
    task: str
    model_key: str
    fallback_key: str | None
    max_output_tokens: int | None


@dataclass(frozen=True)
class PlanSpec:
    slug: str
    name: str
    tier: str
    monthly_email_quota: int
    monthly_budget_usd: Decimal | None
    routes: dict  # (backend, task) → PlanRouteSpec
    dynamic: dict = field(default_factory=dict)  # (backend, label) → PlanRouteSpec (task: the label)


@dataclass(frozen=True)
class Snapshot:
    """The catalog and plans as one process last read them."""

    read_at: float
    models: dict  # key → ModelSpec (enabled or not)
    by_base_id: dict  # base model id → ModelSpec
    plans: dict  # slug → PlanSpec
    references: tuple = ()  # the semantic router's reference set: (label, text) of each enabled ReferencePrompt


_snapshot: Snapshot | None = None
_lock = threading.Lock()


def snapshot() -> Snapshot:
    """The catalog and plans, read from the database at most once per CACHE_SECONDS per process, and again at
    once after this process saves a change (`invalidate`, from the models' signals): a routing decision is then
    a few dictionary lookups (microseconds), and an operator's edit reaches every worker within CACHE_SECONDS.
    Worker threads (a chunk's model calls) never read the database: they keep the copy they have."""
    global _snapshot
    current = _snapshot
    if current is not None and (time.monotonic() - current.read_at < CACHE_SECONDS or not _main_thread()):
        return current
    with _lock:
        if _snapshot is current or _snapshot is None:
            _snapshot = _read()
        return _snapshot


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def invalidate(*args, **kwargs) -> None:
    """Forget this process's copy (the next lookup reads the database); connected to every save and delete of
    the catalog, plans and routes, now and again when their transaction commits."""
    global _snapshot
    _snapshot = None


def _read() -> Snapshot:
    from routing.models import DynamicRoute, ModelEntry, Plan, PlanRoute, ReferencePrompt

    models = {entry.key: _spec(entry) for entry in ModelEntry.objects.all()}
    by_base_id = {}
    for spec in models.values():
        if not spec.model_id.startswith("arn:") or ":inference-profile/" in spec.model_id:
            by_base_id.setdefault(base_model_id(spec.model_id), spec)
    routes: dict[str, dict] = {}
    for route in PlanRoute.objects.select_related("model", "fallback").order_by("pk"):
        routes.setdefault(route.plan_id, {})[(route.backend, route.task)] = PlanRouteSpec(
            route.task, route.model.key, route.fallback.key if route.fallback else None, route.max_output_tokens
        )
    dynamic: dict[str, dict] = {}
    for route in DynamicRoute.objects.select_related("model", "fallback").order_by("pk"):
        dynamic.setdefault(route.plan_id, {})[(route.backend, route.label)] = PlanRouteSpec(
            route.label, route.model.key, route.fallback.key if route.fallback else None, None
        )
    plans = {
        plan.slug: PlanSpec(
            plan.slug,
            plan.name,
            plan.tier,
            plan.monthly_email_quota,
            plan.monthly_budget_usd,
            routes.get(plan.pk, {}),
            dynamic.get(plan.pk, {}),
        )  # fmt: skip
        for plan in Plan.objects.all()
    }
    references = tuple(ReferencePrompt.objects.filter(enabled=True).order_by("pk").values_list("label", "text"))
    return Snapshot(time.monotonic(), models, by_base_id, plans, references)


def _spec(entry) -> ModelSpec:
    return ModelSpec(
        entry.key, entry.provider, entry.router_arn or entry.model_id, entry.input_per_1k, entry.output_per_1k,
        entry.tier, max_tokens=entry.max_tokens, temperature=entry.temperature, batch=entry.supports_batch,
        cache_read_per_1k=entry.cache_read_per_1k, cache_write_per_1k=entry.cache_write_per_1k,
        batch_input_per_1k=entry.batch_input_per_1k, batch_output_per_1k=entry.batch_output_per_1k,
        context_window=entry.context_window, caching=entry.supports_caching, enabled=entry.enabled,
    )  # fmt: skip


def get_model(key: str) -> ModelSpec:
    """The catalog's entry for `key`; UnknownModel for a key it does not list or a model that is disabled."""
    models = snapshot().models
    spec = models.get(key)
    if spec is None or not spec.enabled:
        known = ", ".join(sorted(k for k, s in models.items() if s.enabled))
        state = "disabled" if spec else "unknown"
        raise UnknownModel(f"{state} model {key!r}; known: {known}")
    return spec


def get_plan(slug: str) -> PlanSpec:
    plans = snapshot().plans
    try:
        return plans[slug]
    except KeyError:
        raise UnknownPlan(f"unknown plan {slug!r}; known: {', '.join(sorted(plans))}") from None


class UnknownPlan(KeyError):
    pass


def model_for_id(model_id: str) -> ModelSpec | None:
    """The catalog's entry for the model behind an id, inference profile id or ARN (as a prompt router names the
    model that answered), or None for a model we do not list."""
    return snapshot().by_base_id.get(base_model_id(model_id))


def base_model_id(model_id: str) -> str:
    """The model's own id: "anthropic.claude-3-haiku-20240307-v1:0" for itself, its cross-region profile
    "us.anthropic…", and the ARN of either; Bedrock prices a profile's tokens as the model's."""
    name = model_id.rsplit("/", 1)[-1]
    return name[len(next((p for p in PROFILE_PREFIXES if name.startswith(p)), "")) :]
