"""Routing: the plan policy, prices, and the gateway's usage records (Bedrock through the emulator)."""

from decimal import Decimal

import pytest

from routing.catalog import UnknownModel, get_model, model_for_id
from routing.errors import ProviderError
from routing.models import LLMCall, ModelEntry
from routing.policy import choose_model
from tests.llm import llm_call

pytestmark = pytest.mark.django_db


def catalog_entry(key, model_id, tier, input_=0, output=0, **fields) -> str:
    """A catalog row added as an operator would (the cache forgets its copy on save)."""
    ModelEntry.objects.create(key=key, provider="bedrock", model_id=model_id, tier=tier, input_per_1k=Decimal(input_),
                              output_per_1k=Decimal(output), **fields)  # fmt: skip
    return key


def on_plan(tenant, plan):
    tenant.plan = plan
    tenant.save(update_fields=["plan"])


def test_plans_route_to_small_and_large_models():
    basic = choose_model(plan="basic", task="marketing_email", backend="bedrock", plan_models={}, tenant_overrides={})
    pro = choose_model(plan="pro", task="marketing_email", backend="bedrock", plan_models={}, tenant_overrides={})
    assert get_model(basic.model_key).tier == "small" and get_model(pro.model_key).tier == "large"
    assert "plan basic" in basic.reason


def test_overrides_win_in_order_and_are_checked():
    configured = choose_model(
        plan="basic", task="t", backend="bedrock", plan_models={"basic": "bedrock/claude-3-haiku"}, tenant_overrides={}
    )
    assert configured.model_key == "bedrock/claude-3-haiku" and "LLM_PLAN_MODELS" in configured.reason
    override = choose_model(
        plan="pro",
        task="t",
        backend="bedrock",
        plan_models={"pro": "bedrock/claude-3.5-sonnet"},
        tenant_overrides={"t": "bedrock/nova-pro"},
    )
    assert override.model_key == "bedrock/nova-pro" and "tenant override" in override.reason
    with pytest.raises(UnknownModel, match="unknown model 'gpt-9'"):
        choose_model(plan="pro", task="t", backend="bedrock", plan_models={}, tenant_overrides={"t": "gpt-9"})


def test_cost_uses_the_per_thousand_prices():
    spec = get_model("bedrock/claude-3.7-sonnet")
    assert spec.cost(1000, 1000) == Decimal("0.018")
    assert get_model("local/qwen2.5-1.5b").cost(5000, 5000) == 0


def test_each_call_leaves_a_usage_record(bedrock_settings, tenant):
    prompt = "<user>\nName: Zoe\n</user>\n<movie>\nTitle: Blue Moon\n</movie>\n<signoff>\nAna\n</signoff>"
    response, call = llm_call(tenant=tenant, task="marketing_email", system="be brief", prompt=prompt)
    assert "Zoe" in response.text and "Blue Moon" in response.text
    stored = LLMCall.objects.for_tenant(tenant).get()
    assert stored == call and stored.ok
    assert (stored.input_tokens, stored.output_tokens) == (response.input_tokens, response.output_tokens)
    assert stored.cost_usd == get_model(stored.model_key).cost(stored.input_tokens, stored.output_tokens)
    assert stored.route_reason and stored.latency_ms >= 0


def test_permanent_errors_are_recorded_and_raised(bedrock_settings, tenant):
    on_plan(tenant, "pro")
    tenant.model_overrides = {
        "bad": catalog_entry("test/bare-sonnet", "anthropic.claude-3-7-sonnet-20250219-v1:0", "large")
    }
    with pytest.raises(ProviderError) as raised:
        llm_call(tenant=tenant, task="bad", system="s", prompt="p")
    assert raised.value.permanent and raised.value.code == "ValidationException"
    assert "inference profile" in raised.value.message
    failed = LLMCall.objects.for_tenant(tenant).get()
    assert not failed.ok and "ValidationException" in failed.error


def test_throttling_after_all_retries_is_retryable(bedrock_settings, tenant, emulator):
    emulator.configure(fail_next=10)
    with pytest.raises(ProviderError) as raised:
        llm_call(tenant=tenant, task="t", system="s", prompt="p")
    assert not raised.value.permanent and raised.value.code == "ThrottlingException"
    # The adapter's retries on the plan's model, then as many on its fallback, which is throttled too.
    throttled = emulator.requests.filter(operation="Converse", status=429)
    assert [r.model_id for r in throttled] == [get_model("bedrock/nova-lite").model_id] * 3 + [HAIKU] * 3
    assert bedrock_settings.AWS_MAX_ATTEMPTS == 3


def test_prompt_cache_tokens_are_priced():
    spec = get_model("bedrock/claude-3.7-sonnet")
    assert spec.cost(1000, 0, cache_read=1000) == Decimal("0.0033")  # 0.003 + 0.1 × 0.003
    assert spec.cost(0, 0, cache_write=1000) == Decimal("0.00375")


def test_the_tenants_guardrail_screens_generation(bedrock_settings, scoped, tenant, catalog, emulator):
    from campaigns import generation, services
    from campaigns.models import Campaign, GeneratedEmail

    emulator.guardrails.define("gr-acme", words=["Name0"], version="1")
    tenant.bedrock_guardrail_id, tenant.bedrock_guardrail_version = "gr-acme", "1"
    tenant.save()
    run = services.campaign_launch(campaign=Campaign.objects.create(tenant=tenant, name="guarded"), limit=2)
    for chunk in services.run_start(run=run, limit=2):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    blocked, passed = GeneratedEmail.objects.filter(run=run).order_by("contact__external_id")
    assert (blocked.contact.first_name, blocked.status) == ("Name0", "failed")
    assert "guardrail" in blocked.failure_reason
    assert passed.status == "draft"


ROUTER = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def router_entry(db):
    """A catalog entry for Bedrock's default Anthropic prompt router, priced (for its reservation) as its larger
    model; the emulator's router sends short prompts to Claude 3 Haiku and long ones to Claude 3.5 Sonnet."""
    return catalog_entry("test/claude-router", HAIKU, "large", "0.003", "0.015", router_arn=ROUTER)


@pytest.mark.parametrize(
    "prompt, answered_by",
    [("Say hello", "bedrock/claude-3-haiku"), ("Tell me about the movie. " * 80, "bedrock/claude-3.5-sonnet")],
)
def test_a_prompt_router_call_is_priced_at_the_model_that_answered(
    bedrock_settings, tenant, router_entry, prompt, answered_by
):
    on_plan(tenant, "pro")
    tenant.model_overrides = {"routed": router_entry}
    response, call = llm_call(tenant=tenant, task="routed", system="be brief", prompt=prompt, max_tokens=100)
    stored = LLMCall.objects.for_tenant(tenant).get()
    assert stored.model_key == router_entry and stored.invoked_model_id == response.invoked_model_id
    assert stored.invoked_model_id.endswith(f"inference-profile/us.{get_model(answered_by).model_id}")
    assert stored.cost_usd == get_model(answered_by).cost(stored.input_tokens, stored.output_tokens)
    assert answered_by in stored.route_reason


@pytest.mark.parametrize(
    "model_id, key",
    [
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU}", "bedrock/claude-3-haiku"),
        (f"us.{HAIKU}", "bedrock/claude-3-haiku"),
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", "bedrock/claude-3.7-sonnet"),
        ("eu.amazon.nova-lite-v1:0", "bedrock/nova-lite"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", "bedrock/nova-pro"),
        ("amazon.nova-ultra-v9:0", None),
    ],
)
def test_the_catalog_finds_a_model_by_any_of_its_ids(model_id, key):
    found = model_for_id(model_id)
    assert (found.key if found else None) == key
