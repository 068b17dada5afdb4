"""Plot shortening through the real generation path (the emulator's model, real boto3, PostgreSQL): a long plot is
summarized once on the "shorten" route, kept on the item and reused by every run; an edited plot is summarized
again; a short plot never reaches the model; a failed shortening truncates the plot and never fails a draft."""

import pytest

from campaigns import generation, services
from campaigns.models import Campaign, EmailStatus, GeneratedEmail
from campaigns.plots import plot_hash
from datasets.models import Item
from routing.models import LLMCall

NOVA_MICRO = "us.amazon.nova-micro-v1:0"  # the shorten route's model on every plan
LONG = "The first sentence tells who the hero is. " * 7 + "A secret ending nobody should read in an email. " * 20


def run_campaign(tenant, name="plots", limit=6):
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name=name, n_items=2)
    run = services.campaign_launch(campaign=campaign, limit=limit)
    for chunk in services.run_start(run=run, limit=limit):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    return list(GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk"))


def shorten_calls(tenant):
    return LLMCall.dangerously_unscoped.filter(tenant=tenant, task="shorten")


@pytest.fixture
def long_plots(bedrock_settings, tenant, catalog):
    Item.dangerously_unscoped.filter(tenant=tenant).update(plot=LONG)
    return catalog


def picked(emails) -> set[str]:
    return {item["id"] for email in emails for item in email.items}


def test_a_long_plot_is_shortened_once_and_reused_by_every_run(tenant, long_plots):
    first = run_campaign(tenant, "first")
    ids = picked(first)
    assert first and all(e.status in (EmailStatus.DRAFT, EmailStatus.APPROVED) for e in first)
    calls = list(shorten_calls(tenant))
    assert sorted(c.model_key for c in calls) == ["bedrock/nova-micro"] * len(ids)  # one per item, its own route
    assert all(c.ok and c.cost_usd > 0 and c.run_id == first[0].run_id for c in calls)
    items = Item.dangerously_unscoped.filter(tenant=tenant, external_id__in=ids)
    for item in items:
        assert item.short_plot.startswith("The first sentence") and len(item.short_plot) <= 300
        assert item.short_plot_source == plot_hash(LONG) and not item.short_plot_problem
    assert all("secret ending" not in e.prompt and "The first sentence" in e.prompt for e in first)
    second = run_campaign(tenant, "second")
    assert all("secret ending" not in e.prompt for e in second)
    assert shorten_calls(tenant).count() == len(ids | picked(second))  # nothing shortened twice


def test_an_edited_plot_is_shortened_again(tenant, long_plots):
    emails = run_campaign(tenant)
    before = shorten_calls(tenant).count()
    edited = emails[0].items[0]["id"]
    Item.dangerously_unscoped.filter(tenant=tenant, external_id=edited).update(plot="A new opening. " + LONG)
    run_campaign(tenant, "after the edit")
    assert shorten_calls(tenant).count() == before + 1
    item = Item.dangerously_unscoped.get(tenant=tenant, external_id=edited)
    assert item.short_plot.startswith("A new opening.") and item.short_plot_source == plot_hash(item.plot)


def test_a_short_plot_is_never_sent_to_the_model(bedrock_settings, tenant, catalog):
    emails = run_campaign(tenant)
    assert emails and not shorten_calls(tenant).exists()
    assert "A story about case" in emails[0].prompt  # the plot itself


def test_a_failed_shortening_falls_back_to_the_truncated_plot(tenant, long_plots, emulator):
    emulator.configure(model_id=NOVA_MICRO, fail_next=1000, fail_with="internal")
    emails = run_campaign(tenant)
    assert emails and all(e.status in (EmailStatus.DRAFT, EmailStatus.APPROVED) for e in emails)
    assert all("…" in e.prompt and "secret ending" not in e.prompt for e in emails)
    failed = list(shorten_calls(tenant))
    assert failed and not any(c.ok for c in failed) and all(c.error for c in failed)
    item = Item.dangerously_unscoped.get(tenant=tenant, external_id=emails[0].items[0]["id"])
    assert not item.short_plot and "model call failed" in item.short_plot_problem


def test_shortening_is_the_tenants_own(tenant, other_tenant, long_plots, other_catalog):
    Item.dangerously_unscoped.filter(tenant=other_tenant).update(plot=LONG)
    run_campaign(tenant)
    assert not Item.dangerously_unscoped.filter(tenant=other_tenant).exclude(short_plot="").exists()
    assert not shorten_calls(other_tenant).exists() and shorten_calls(tenant).exists()


@pytest.mark.django_db(transaction=True)
def test_two_chunks_needing_the_same_item_make_one_call(bedrock_settings, tenant, emulator):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from campaigns.plots import plots_short

    Item.dangerously_unscoped.create(tenant=tenant, external_id="long", title="Long One", plot=LONG)
    emulator.configure(model_id=NOVA_MICRO, latency_ms=300)  # the first claim is still calling when the second asks

    def chunk(_):
        try:
            return plots_short(tenant=tenant, external_ids={"long"})
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(chunk, range(2)))
    assert shorten_calls(tenant).count() == 1
    assert answers[0] == answers[1] and answers[0]["long"].startswith("The first sentence")
