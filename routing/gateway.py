"""The LLM gateway: route a request by the tenant's plan and task, call the provider, record the usage."""

import dataclasses
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

from routing.budget import Allowance, BudgetExceeded, budget_reserve, budget_settle, call_estimate
from routing.catalog import (
    GUARDRAIL_KEY,
    ModelSpec,
    base_model_id,
    get_model,
    get_plan,
    guardrail_cost,
    model_for_id,
)  # fmt: skip
from routing.errors import ProviderError
from routing.localmodel import LocalModelError
from routing.models import LLMCall, tier_allows
from routing.policy import RouteDecision, RouteRefused, choose_model
from routing.ratelimit import Limits, limiter
from routing.types import LLMRequest, LLMResponse
from tenants.aws import PLATFORM, account_of, region_of
from tenants.models import GuardrailUse

BATCH_REASON = "Bedrock batch inference (batch price)"  # added to a batch record's route reason


def route_for(*, tenant, task: str, configured_model: bool = True) -> RouteDecision:
    """The tenant's route for the task (routing.policy.choose_model); `configured_model=False` keeps the plan's own
    route for the task where LLM_PLAN_MODELS names another model for the plan (the judge: kept on a cheap model)."""
    return choose_model(
        plan=tenant.plan,
        task=task,
        backend=settings.LLM_BACKEND,
        plan_models=settings.LLM_PLAN_MODELS if configured_model else {},
        tenant_overrides=tenant.model_overrides or {},
    )


def provider_for(spec: ModelSpec, tenant=None):
    match spec.provider:
        case "bedrock":
            return _bedrock(tenant)
        case "local":
            try:
                return _local_provider(str(settings.LOCAL_MODEL_PATH), settings.LOCAL_MODEL_THREADS)
            except LocalModelError as exc:  # not installed, or corrupt: no retry helps until someone installs it
                raise ProviderError(str(exc), permanent=True, code="LocalModelMissing") from exc
        case _:
            raise ProviderError(f"no provider {spec.provider!r}", permanent=True)


def _bedrock(tenant=None):
    from routing.providers.bedrock import BedrockProvider

    return BedrockProvider(
        region=settings.AWS_REGION,
        endpoint_url=settings.AWS_ENDPOINT_URLS.get("bedrock-runtime"),
        max_attempts=settings.AWS_MAX_ATTEMPTS,
        read_timeout=settings.AWS_READ_TIMEOUT,
        tenant=tenant,  # its region, its own account's role, if it has them
    )


@lru_cache(maxsize=2)
def _local_provider(model_path: str, n_threads: int):
    # Imported here so that only processes that really run the local model load llama.cpp.
    from routing.localmodel import ensure_model
    from routing.providers.local import LocalProvider

    return LocalProvider(model_path=str(ensure_model(model_path)), n_threads=n_threads or None)


def llm_request(tenant, model_id: str, system: str, prompt: str, max_tokens: int = 700, temperature: float = 0.7,
                stop: tuple[str, ...] = (), cache_system: bool = True) -> LLMRequest:  # fmt: skip
    """A request carrying the tenant's guardrail, if it configured one to screen model calls."""
    on_calls = tenant.guardrail_use == GuardrailUse.MODEL_CALLS
    return LLMRequest(
        model_id, system, prompt, max_tokens, temperature, stop=stop, cache_system=cache_system,
        guardrail_id=tenant.bedrock_guardrail_id if on_calls else "",
        guardrail_version=tenant.bedrock_guardrail_version if on_calls else "",
    )  # fmt: skip


def screens_drafts(tenant) -> bool:
    return bool(tenant.bedrock_guardrail_id) and tenant.guardrail_use == GuardrailUse.DRAFTS


def draft_screen(*, tenant, task: str, text: str):
    """The tenant's guardrail's verdict on a finished draft (Bedrock ApplyGuardrail, source OUTPUT), whichever
    model wrote it, or the error it got instead (None for the other), and an unsaved usage record: the text
    units it billed, priced, and its latency. No database: safe in worker threads."""
    guardrail = f"{tenant.bedrock_guardrail_id}:{tenant.bedrock_guardrail_version or 'DRAFT'}"
    record = LLMCall(tenant=tenant, task=task, model_key=GUARDRAIL_KEY, provider="bedrock", model_id=guardrail[:200],
                     route_reason="draft screening (ApplyGuardrail)", created_at=timezone.now())  # fmt: skip
    try:
        verdict = _bedrock(tenant).apply_guardrail(
            text=text, guardrail_id=tenant.bedrock_guardrail_id, guardrail_version=tenant.bedrock_guardrail_version
        )
    except ProviderError as exc:
        record.ok, record.error = False, f"{exc.code}: {exc.message}"[:2000]
        return None, record, exc
    record.cost_usd, record.latency_ms = guardrail_cost(verdict.usage), verdict.latency_ms
    return verdict, record, None


def limits_for(spec: ModelSpec) -> Limits:
    """The model's quota in one AWS account and region (LLM_RATE_LIMITS)."""
    configured = settings.LLM_RATE_LIMITS.get(spec.key, {})
    return Limits(rpm=int(configured.get("rpm", 0)), tpm=int(configured.get("tpm", 0)))


def rate_budgets(*, tenant, spec: ModelSpec) -> dict:
    """The limiter's budgets for a call (RateLimiter.acquire's scope, limits and shares): the quota of the
    (account, region, model) that Bedrock meters, and on the platform's account, which tenants share, the
    tenant's share of it (LLM_TENANT_SHARE), so that no one tenant can spend a minute's quota for all."""
    limits, account = limits_for(spec), account_of(tenant)
    scope = f"{account}:{region_of(tenant)}:{spec.model_id}"
    share = settings.LLM_TENANT_SHARE
    shares = {f"{scope}:tenant:{tenant.pk}": limits.share(share)} if account == PLATFORM and share < 1 else {}
    return {"scope": scope, "limits": limits, "shares": shares}


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


def llm_invoke(
    *, tenant, task: str, route: RouteDecision, request: LLMRequest, allowance: Allowance | None = None
) -> tuple[LLMResponse | None, LLMCall, ProviderError | None]:
    """Call the routed model once with `request` (built for the route's model, `llm_request(tenant,
    spec.model_id, ...)`), inside its rate limits (rate_budgets), without touching the database (safe in worker
    threads). A model throttled or failing after the adapter's retries hands the call to the route's fallback (the
    same tier); a permanent error is the answer. Each call first takes its estimated cost from `allowance` (dollars
    a chunk reserved in the tenant's budget: no database), or without one reserves it in the budget itself
    (routing.budget: the database, so not from worker threads); over budget, BudgetExceeded is the error. Returns the response (None on failure), an unsaved usage record of
    the model that answered or failed last (the caller saves records in bulk) and the error, if any."""
    spec = get_model(route.model_key)
    response, record, error = _invoke(tenant=tenant, task=task, spec=spec, reason=route.reason, request=request,
                                      allowance=allowance)  # fmt: skip
    if error is None or error.permanent or not route.fallback_key:
        return response, record, error
    fallback = get_model(route.fallback_key)
    why = f"{route.reason}; fallback after {error.code or 'error'} on {spec.key}"
    request = dataclasses.replace(request, model_id=fallback.model_id,
                                  max_tokens=min(request.max_tokens, route.max_tokens or fallback.max_tokens))  # fmt: skip
    return _invoke(tenant=tenant, task=task, spec=fallback, reason=why, request=request, allowance=allowance)


def _invoke(*, tenant, task: str, spec: ModelSpec, reason: str, request: LLMRequest, allowance: Allowance | None):
    record = usage_record(tenant=tenant, task=task, spec=spec, route_reason=reason)
    record.created_at = timezone.now()
    plan = get_plan(tenant.plan)
    if not tier_allows(plan.tier, spec.tier):  # whoever built the route: never a model above the tenant's tier
        error = RouteRefused(f"{spec.key} is a {spec.tier}-tier model; plan {plan.slug} is on the {plan.tier} tier")
        record.ok, record.error = False, f"{error.code}: {error.message}"
        return None, record, error
    estimate = call_estimate(spec, request)
    try:
        if allowance is not None:
            allowance.take(estimate)
            own = None
        else:
            own = budget_reserve(tenant=tenant, wanted=estimate)
    except BudgetExceeded as exc:
        record.ok, record.error = False, f"{exc.code}: {exc.message}"[:2000]
        return None, record, exc
    try:
        return _call(tenant=tenant, spec=spec, request=request, record=record)
    finally:
        if own is not None:
            budget_settle(own, record.cost_usd)
        else:
            allowance.give_back(estimate - record.cost_usd)


def _call(*, tenant, spec: ModelSpec, request: LLMRequest, record: LLMCall):
    budget = limiter()
    reservation = budget.acquire(
        **rate_budgets(tenant=tenant, spec=spec),
        tokens=estimate_tokens(request.system + request.prompt) + request.max_tokens,
    )  # fmt: skip
    # The request time, which is what Bedrock meters: the limiter's own grant time when there is a limit, so the
    # usage records and the window agree to the millisecond on which minute a call belongs to.
    record.created_at = reservation.granted_at if reservation else timezone.now()
    try:
        response = provider_for(spec, tenant).converse(request)
    except ProviderError as exc:
        budget.settle(reservation, estimate_tokens(request.system + request.prompt))
        record.ok, record.error = False, f"{exc.code}: {exc.message}"[:2000]
        return None, record, exc
    budget.settle(reservation, response.input_tokens + response.output_tokens)
    usage_fill(record, response, spec)
    return response, record, None


def llm_batch_usage(*, tenant, task: str, route: RouteDecision, answer: LLMResponse | ProviderError) -> LLMCall:
    """The unsaved usage record of one Bedrock batch inference record (its answer, or the error it got
    instead), billed at the batch price."""
    spec = get_model(route.model_key)
    record = usage_record(tenant=tenant, task=task, spec=spec, route_reason=f"{route.reason}; {BATCH_REASON}")
    if isinstance(answer, ProviderError):
        record.ok, record.error = False, f"{answer.code}: {answer.message}"[:2000]
    else:
        usage_fill(record, answer, spec, batch=True)
    return record


def usage_record(*, tenant, task: str, spec: ModelSpec, route_reason: str) -> LLMCall:
    return LLMCall(
        tenant=tenant, task=task, model_key=spec.key, provider=spec.provider, model_id=spec.model_id,
        route_reason=route_reason[:300],
    )  # fmt: skip


def usage_fill(record: LLMCall, response: LLMResponse, spec: ModelSpec, *, batch: bool = False) -> None:
    """The answer's tokens, priced at the model that answered: the routed one, or the one a prompt router picked
    (its price for a pick we do not list; Bedrock bills a router's calls at the model it invoked)."""
    record.invoked_model_id = response.invoked_model_id or spec.model_id
    priced = _answered_by(spec, record.invoked_model_id)
    record.answered_by = priced.key
    if priced is not spec:
        record.route_reason = f"{record.route_reason}; answered by {priced.key}, priced as it"[:300]
    record.input_tokens, record.output_tokens = response.input_tokens, response.output_tokens
    record.cache_read_tokens, record.cache_write_tokens = response.cache_read_tokens, response.cache_write_tokens
    record.cost_usd = priced.cost(
        response.input_tokens, response.output_tokens, response.cache_read_tokens, response.cache_write_tokens,
        batch=batch,
    )  # fmt: skip
    record.latency_ms = response.latency_ms


def _answered_by(spec: ModelSpec, invoked_model_id: str) -> ModelSpec:
    if base_model_id(invoked_model_id) == base_model_id(spec.model_id):
        return spec
    return model_for_id(invoked_model_id) or spec
