"""The routing policy: which model serves a request, its fallback, and why. No I/O beyond the catalog's cache.

A plan (routing.Plan, in data) routes each task, per backend, to a model and a fallback of the same tier, with an
answer budget; a route for task "*" serves every task without its own. Platform staff may override the model per
task for one tenant (Tenant.model_overrides). Whatever the source (a route, LLM_PLAN_MODELS, an override, a
fallback), a model of a tier the tenant's plan does not include is never chosen: an override is refused (and the
plan's route serves), and a plan configured so is an error, not a call."""

from dataclasses import dataclass

from routing.catalog import ANY_TASK, get_model, get_plan
from routing.errors import ProviderError
from routing.models import tier_allows


class RouteRefused(ProviderError):
    """No model of the plan's tier can serve this request (a plan misconfigured): an error to fix, not to retry."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True, code="RouteRefused")


@dataclass(frozen=True)
class RouteDecision:
    model_key: str
    reason: str
    fallback_key: str | None = None  # answers when the model is throttled or failing after its retries
    max_tokens: int | None = None  # the route's answer budget; None: the model's


def choose_model(
    *, plan: str, task: str, backend: str, plan_models: dict[str, str], tenant_overrides: dict[str, str]
) -> RouteDecision:
    """The plan's route for the task (or its "*" route) on this backend; the operator's LLM_PLAN_MODELS in place
    of the route's model; then the tenant's override for the task, if its tier is the plan's."""
    spec = get_plan(plan)
    route = spec.routes.get((backend, task)) or spec.routes.get((backend, ANY_TASK))
    if route is None:
        raise RouteRefused(f"plan {plan} has no {backend} route for task {task!r}")
    key = route.model_key
    reason = f"plan {plan} → {key} ({'route for task ' + repr(task) if route.task == task else 'default route'})"
    if plan in plan_models:
        key = plan_models[plan]
        reason = f"plan {plan} → configured model {key} (LLM_PLAN_MODELS)"
    notes = []
    if task in tenant_overrides:
        wanted = get_model(tenant_overrides[task])  # UnknownModel for a key the catalog does not list
        if tier_allows(spec.tier, wanted.tier):
            key, reason = wanted.key, f"tenant override for task {task!r} → {wanted.key}"
        else:
            notes.append(f"override {wanted.key} refused: {wanted.tier}-tier model, plan {plan} is {spec.tier}-tier")
    model = get_model(key)
    if not tier_allows(spec.tier, model.tier):
        raise RouteRefused(f"plan {plan} is on the {spec.tier} tier but routes task {task!r} to {key}, a "
                           f"{model.tier}-tier model: fix the plan's routes")  # fmt: skip
    fallback = _fallback(route.fallback_key, model, plan_tier=spec.tier, notes=notes)
    reason = "; ".join([reason, *notes])
    return RouteDecision(key, reason, fallback, route.max_output_tokens)


def _fallback(key: str | None, model, *, plan_tier: str, notes: list[str]) -> str | None:
    """The route's fallback, if it may serve: enabled, of the model's tier, allowed on the plan, not the model."""
    if not key or key == model.key:
        return None
    try:
        fallback = get_model(key)
    except KeyError:
        notes.append(f"fallback {key} unavailable")
        return None
    if fallback.tier != model.tier or not tier_allows(plan_tier, fallback.tier):
        notes.append(f"fallback {key} refused: {fallback.tier}-tier, the model is {model.tier}-tier")
        return None
    return key
