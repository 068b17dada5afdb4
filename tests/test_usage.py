"""Cost per call, recorded with tenant, campaign, run, task, the model that answered (a prompt router's pick,
priced at its own price), tokens, latency and route reason; and the sums by model, campaign, run, task and day."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from campaigns import generation, services
from campaigns.models import Campaign
from routing.catalog import get_model
from routing.models import LLMCall, ModelEntry
from routing.usage import usage_by
from tenants.scoping import tenant_scope
from tests.llm import llm_call

ROUTER = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"


def write_run(tenant, n=2):
    with tenant_scope(tenant):
        run = services.campaign_launch(
            campaign=Campaign.objects.create(tenant=tenant, name=f"{tenant.slug} c"), limit=n
        )
        for chunk in services.run_start(run=run, limit=n):
            generation.run_generate_chunk(run=run, contact_ids=chunk)
    return run


def test_each_call_records_its_campaign_run_and_the_model_that_answered(bedrock_settings, tenant, catalog):
    run = write_run(tenant)
    calls = list(LLMCall.objects.for_tenant(tenant).filter(run_id=run.pk))
    assert len(calls) == 2
    for call in calls:
        assert (call.campaign_id, call.task, call.answered_by) == (
            run.campaign_id,
            "marketing_email",
            "bedrock/nova-lite",
        )
        assert call.input_tokens > 0 and call.output_tokens > 0 and call.route_reason.startswith("plan basic")
        assert call.cost_usd == get_model("bedrock/nova-lite").cost(call.input_tokens, call.output_tokens) > 0


def test_a_prompt_router_call_is_summed_under_the_model_it_invoked(bedrock_settings, tenant):
    ModelEntry.objects.create(key="test/router", provider="bedrock", model_id="anthropic.claude-3-haiku-20240307-v1:0",
                              router_arn=ROUTER, tier="large", input_per_1k=Decimal("0.003"),
                              output_per_1k=Decimal("0.015"))  # fmt: skip
    tenant.plan, tenant.model_overrides = "pro", {"routed": "test/router"}
    llm_call(tenant=tenant, task="routed", system="s", prompt="Say hello", max_tokens=50)
    call = LLMCall.objects.for_tenant(tenant).get()
    assert (call.model_key, call.answered_by) == ("test/router", "bedrock/claude-3-haiku")
    (row,) = usage_by(tenant, "model")
    assert (row["model"], row["calls"], row["cost_usd"]) == ("bedrock/claude-3-haiku", 1, call.cost_usd)
    assert row["cost_usd"] == get_model("bedrock/claude-3-haiku").cost(call.input_tokens, call.output_tokens)


def test_usage_sums_by_model_campaign_run_task_and_day_within_the_tenant(
    bedrock_settings, tenant, other_tenant, catalog, other_catalog
):
    run, theirs = write_run(tenant, 3), write_run(other_tenant, 2)
    llm_call(tenant=tenant, task="preview", system="s", prompt="Say hello")  # for no campaign
    mine = LLMCall.objects.for_tenant(tenant)
    total = sum(c.cost_usd for c in mine)
    (by_model,) = usage_by(tenant, "model")
    assert (by_model["model"], by_model["calls"], by_model["failed"]) == ("bedrock/nova-lite", 4, 0)
    assert by_model["cost_usd"] == total and by_model["input_tokens"] == sum(c.input_tokens for c in mine)
    campaigns = {row["campaign"]: row for row in usage_by(tenant, "campaign")}
    assert set(campaigns) == {run.campaign_id, None} and campaigns[run.campaign_id]["calls"] == 3
    assert theirs.campaign_id not in campaigns
    assert [row["run"] for row in usage_by(tenant, "run")] == [run.pk, None]
    assert {row["task"]: row["calls"] for row in usage_by(tenant, "task")} == {"marketing_email": 3, "preview": 1}
    (today,) = usage_by(tenant, "day")
    assert (today["day"], today["calls"], today["cost_usd"]) == (datetime.now(UTC).date(), 4, total)
    assert usage_by(tenant, "day", since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert usage_by(other_tenant, "model")[0]["calls"] == 2
    with pytest.raises(ValueError, match="grouped by one of"):
        usage_by(tenant, "contact")
