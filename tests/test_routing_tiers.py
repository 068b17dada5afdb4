"""A Basic tenant is never served by a Pro-tier model, whatever path a route takes; and a model throttled or
failing after the adapter's retries hands the call to its fallback of the same tier, while a permanent error is
reported as it is. Bedrock is the emulator, over HTTP through boto3."""

import pytest

from campaigns import generation, services
from campaigns.models import Campaign, GeneratedEmail
from routing.catalog import get_model
from routing.gateway import llm_invoke, llm_request, route_for
from routing.models import LLMCall, ModelEntry, PlanRoute, Tier
from routing.policy import RouteDecision, RouteRefused
from tests.llm import llm_call

LITE, HAIKU, NOVA_PRO, SONNET = (
    "bedrock/nova-lite",
    "bedrock/claude-3-haiku",
    "bedrock/nova-pro",
    "bedrock/claude-3.7-sonnet",
)


def large_model_ids() -> set[str]:
    return {e.router_arn or e.model_id for e in ModelEntry.objects.filter(tier=Tier.LARGE)}


def converse_ids(emulator) -> list[str]:
    return [r.model_id for r in emulator.requests.filter(operation="Converse")]


def basic_route(**changes):
    PlanRoute.objects.filter(plan__slug="basic", backend="bedrock", task="*").update(**changes)
    from routing.catalog import invalidate

    invalidate()  # a queryset update sends no signal


def test_no_path_routes_a_basic_tenant_to_a_large_tier_model(bedrock_settings, tenant, emulator):
    assert tenant.plan == "basic"
    # An override written past the form (or left from a Pro plan): refused at routing time, the plan's route serves.
    tenant.model_overrides = {"marketing_email": NOVA_PRO}
    decision = route_for(tenant=tenant, task="marketing_email")
    assert decision.model_key == LITE and f"override {NOVA_PRO} refused" in decision.reason
    llm_call(tenant=tenant, task="marketing_email", system="s", prompt="Say hello")
    # A route made by hand: the gateway refuses it before any call.
    response, call, error = llm_invoke(
        tenant=tenant, task="t", route=RouteDecision(SONNET, "hand-made"),
        request=llm_request(tenant, get_model(SONNET).model_id, "s", "p"),
    )  # fmt: skip
    assert response is None and isinstance(error, RouteRefused) and error.permanent and not call.ok
    # A fallback of the large tier (written past the admin's check): dropped, so a throttled model has none.
    basic_route(fallback=ModelEntry.objects.get(key=NOVA_PRO))
    decision = route_for(tenant=tenant, task="marketing_email")
    assert decision.fallback_key is None and f"fallback {NOVA_PRO} refused" in decision.reason
    emulator.configure(get_model(LITE).model_id, fail_next=10)
    with pytest.raises(Exception, match="ThrottlingException|throttl"):
        llm_call(tenant=tenant, task="marketing_email", system="s", prompt="p")
    # The plan itself misconfigured, by the data or by LLM_PLAN_MODELS: an error, not a call.
    basic_route(model=ModelEntry.objects.get(key=NOVA_PRO), fallback=None)
    with pytest.raises(RouteRefused, match="plan basic is on the small tier"):
        route_for(tenant=tenant, task="marketing_email")
    basic_route(model=ModelEntry.objects.get(key=LITE))
    bedrock_settings.LLM_PLAN_MODELS = {"basic": SONNET}
    with pytest.raises(RouteRefused, match="large-tier model"):
        route_for(tenant=tenant, task="marketing_email")
    assert not large_model_ids() & set(converse_ids(emulator)), converse_ids(emulator)
    assert converse_ids(emulator)  # the small model was called


def test_a_pro_tenant_downgraded_to_basic_loses_its_large_override(bedrock_settings, tenant):
    tenant.plan, tenant.model_overrides = "pro", {"marketing_email": NOVA_PRO}
    assert route_for(tenant=tenant, task="marketing_email").model_key == NOVA_PRO
    tenant.plan = "basic"
    assert route_for(tenant=tenant, task="marketing_email").model_key == LITE


@pytest.mark.parametrize("fault, code", [("throttle", "ThrottlingException"), ("unavailable", "ServiceUnavailable")])
def test_a_model_failing_after_its_retries_hands_the_call_to_its_fallback(
    bedrock_settings, tenant, emulator, fault, code
):
    emulator.configure(get_model(LITE).model_id, fail_next=10, fail_with=fault)
    prompt = "<user>\nName: Zoe\n</user>\n<movie>\nTitle: Blue Moon\n</movie>"
    response, call = llm_call(tenant=tenant, task="marketing_email", system="s", prompt=prompt)
    assert "Zoe" in response.text
    assert converse_ids(emulator) == [get_model(LITE).model_id] * 3 + [get_model(HAIKU).model_id]
    stored = LLMCall.objects.for_tenant(tenant).get()
    assert stored.ok and stored.model_key == HAIKU and stored.model_id == get_model(HAIKU).model_id
    assert f"fallback after {code}" in stored.route_reason and f"on {LITE}" in stored.route_reason, stored.route_reason
    assert stored.cost_usd == get_model(HAIKU).cost(stored.input_tokens, stored.output_tokens) > 0


def test_a_permanent_error_is_reported_not_retried_nor_fallen_back(bedrock_settings, tenant, emulator):
    ModelEntry.objects.filter(key=LITE).update(model_id="amazon.nova-lite-v9:0")  # an id Bedrock does not know
    from routing.catalog import invalidate

    invalidate()
    with pytest.raises(Exception) as raised:
        llm_call(tenant=tenant, task="marketing_email", system="s", prompt="p")
    assert raised.value.permanent and raised.value.code == "ValidationException"
    assert converse_ids(emulator) == ["amazon.nova-lite-v9:0"]  # once: no retry, no fallback
    failed = LLMCall.objects.for_tenant(tenant).get()
    assert (failed.ok, failed.model_key) == (False, LITE) and "ValidationException" in failed.error


def test_a_draft_says_which_model_wrote_it_and_why(bedrock_settings, scoped, tenant, catalog, emulator):
    emulator.configure(get_model(LITE).model_id, throttle_rate=1.0)
    run = services.campaign_launch(campaign=Campaign.objects.create(tenant=tenant, name="fallback"), limit=2)
    for chunk in services.run_start(run=run, limit=2):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    emails = GeneratedEmail.objects.filter(run=run)
    assert [e.status for e in emails] == ["draft", "draft"]
    assert {e.model_key for e in emails} == {HAIKU}
    assert all(f"fallback after ThrottlingException on {LITE}" in e.route_reason for e in emails)
