"""The routing policy: which model serves a request, and why. Pure logic, no I/O."""

from dataclasses import dataclass

from routing.catalog import get_model

# Per backend, the model each plan gets. Basic gets a small model, Pro a large one.
PLAN_DEFAULTS = {
    "bedrock": {"basic": "bedrock/nova-lite", "pro": "bedrock/claude-3.7-sonnet"},
    # Offline there is one model; the plans differ in limits, not in quality.
    "local": {"basic": "local/qwen2.5-1.5b", "pro": "local/qwen2.5-1.5b"},
}


@dataclass(frozen=True)
class RouteDecision:
    model_key: str
    reason: str


def choose_model(
    *, plan: str, task: str, backend: str, plan_models: dict[str, str], tenant_overrides: dict[str, str]
) -> RouteDecision:
    """Tenant's per-task override first, then the operator's per-plan setting, then the backend default."""
    if task in tenant_overrides:
        key = tenant_overrides[task]
        get_model(key)
        return RouteDecision(key, f"tenant override for task {task!r}")
    if plan in plan_models:
        key = plan_models[plan]
        get_model(key)
        return RouteDecision(key, f"plan {plan} → configured model (LLM_PLAN_MODELS)")
    key = PLAN_DEFAULTS[backend][plan]
    return RouteDecision(key, f"plan {plan} → default {backend} model")
