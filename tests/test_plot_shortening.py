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


# No transaction or row lock across a model call; calls side by side; one budget reservation; the claim ------------


def long_items(tenant, n):
    for i in range(n):
        Item.dangerously_unscoped.create(tenant=tenant, external_id=f"long-{i}", title=f"Long {i}",
                                         plot=f"Story {i}. " + LONG)  # fmt: skip
    return {f"long-{i}" for i in range(n)}


def in_another_thread(work):
    """`work()` on a connection of its own (what another worker would see: committed rows only)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def run():
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def shorten_sends(on_aws_send, hook):
    """Call `hook()` in the sending thread just before each shorten call goes on the wire."""
    on_aws_send(lambda request: hook() if b"<shorten>" in (request.body or b"") else None)


@pytest.mark.django_db(transaction=True)
def test_no_model_call_is_made_inside_a_transaction_and_calls_run_side_by_side(
    bedrock_settings, tenant, emulator, on_aws_send
):
    import threading
    import time

    from django.db import connections

    from campaigns.plots import plots_short

    ids = long_items(tenant, 4)
    emulator.configure(model_id=NOVA_MICRO, latency_ms=500)
    caller, seen = connections["default"], []

    def at_the_call():
        seen.append((caller.in_atomic_block, connections["default"].in_atomic_block, threading.current_thread().name,
                     time.monotonic()))  # fmt: skip

    shorten_sends(on_aws_send, at_the_call)
    shorts = plots_short(tenant=tenant, external_ids=ids)
    assert len(seen) == 4 and all(s.startswith("Story") for s in shorts.values()) and set(shorts) == ids
    assert not any(in_caller or in_sender for in_caller, in_sender, _, _ in seen), seen
    assert len({name for _, _, name, _ in seen}) > 1
    sent = [at for *_, at in seen]
    assert max(sent) - min(sent) < 0.5  # all four on the wire before the first answered
    assert not Item.dangerously_unscoped.filter(tenant=tenant).exclude(short_plot_claim="").exists()


@pytest.mark.django_db(transaction=True)
def test_the_budget_is_reserved_and_committed_before_the_calls_and_settled_after(
    bedrock_settings, tenant, emulator, on_aws_send
):
    from decimal import Decimal

    from campaigns.plots import plots_short
    from routing.models import SpendHold, SpendUsage
    from tenants.services import quota_month

    ids = long_items(tenant, 3)
    tenant.monthly_budget_usd = Decimal("5")
    tenant.save()
    held = []

    def ledger_elsewhere():
        row = SpendUsage.objects.filter(tenant=tenant, month=quota_month()).first()
        return (row.reserved_usd if row else 0), SpendHold.objects.filter(tenant_id=tenant.pk).count()

    shorten_sends(on_aws_send, lambda: held.append(in_another_thread(ledger_elsewhere)))
    plots_short(tenant=tenant, external_ids=ids)
    calls = list(shorten_calls(tenant))
    assert len(calls) == 3 and len(held) == 3
    assert all(reserved > sum(c.cost_usd for c in calls) and holds == 1 for reserved, holds in held), held
    row = SpendUsage.objects.get(tenant=tenant, month=quota_month())
    assert row.reserved_usd == 0 and row.spent_usd == sum(c.cost_usd for c in calls) > 0
    assert not SpendHold.objects.filter(tenant_id=tenant.pk).exists()


def test_over_budget_a_plot_is_truncated_and_the_item_says_which_limit(bedrock_settings, tenant, emulator):
    from decimal import Decimal

    from campaigns.plots import picks_shortened, truncated
    from recommendations.base import Pick
    from routing.models import SpendUsage
    from tenants.services import quota_month

    ids = long_items(tenant, 2)
    tenant.monthly_budget_usd = Decimal("0.01")
    tenant.save()
    SpendUsage.objects.update_or_create(tenant=tenant, month=quota_month(), defaults={"spent_usd": Decimal("0.01")})
    picks = {1: [Pick(i, i, None, (), f"Story {i[-1]}. " + LONG, 1.0) for i in sorted(ids)]}
    shortened = picks_shortened(tenant=tenant, picks=picks)
    assert [p.plot for p in shortened[1]] == [truncated(p.plot) for p in picks[1]]
    for item in Item.dangerously_unscoped.filter(tenant=tenant, external_id__in=ids):
        assert not item.short_plot and "monthly budget $0.01 reached: $0.01 spent" in item.short_plot_problem
        assert not item.short_plot_claim
    assert not emulator.requests.filter(operation="Converse")
    assert all(not c.ok and c.cost_usd == 0 for c in shorten_calls(tenant)) and shorten_calls(tenant).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_chunks_waiting_on_a_failing_item_still_make_one_call(bedrock_settings, tenant, emulator):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from campaigns.plots import plots_short

    Item.dangerously_unscoped.create(tenant=tenant, external_id="long", title="Long One", plot=LONG)
    emulator.configure(model_id=NOVA_MICRO, latency_ms=300, fail_next=1000, fail_with="internal")
    bedrock_settings.AWS_MAX_ATTEMPTS = 1

    def chunk(_):
        try:
            return plots_short(tenant=tenant, external_ids={"long"})
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(chunk, range(2)))
    assert answers == [{"long": ""}, {"long": ""}] and shorten_calls(tenant).count() == 1
    item = Item.dangerously_unscoped.get(tenant=tenant, external_id="long")
    assert "model call failed" in item.short_plot_problem and not item.short_plot_claim


def test_a_live_claim_is_waited_for_and_a_lapsed_one_taken_over(bedrock_settings, tenant, emulator):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.plots import plots_short

    item = Item.dangerously_unscoped.create(tenant=tenant, external_id="long", title="Long One", plot=LONG,
                                            short_plot_claim="another-chunk",
                                            short_plot_claimed_until=timezone.now() + timedelta(minutes=5))  # fmt: skip
    assert plots_short(tenant=tenant, external_ids={"long"}, wait_seconds=0.3) == {"long": ""}
    assert not shorten_calls(tenant).exists()  # the other chunk's to make
    Item.dangerously_unscoped.filter(pk=item.pk).update(short_plot_claimed_until=timezone.now() - timedelta(seconds=1))
    assert plots_short(tenant=tenant, external_ids={"long"})["long"].startswith("The first sentence")
    assert shorten_calls(tenant).count() == 1
    item.refresh_from_db()
    assert item.short_plot_source == plot_hash(LONG) and not item.short_plot_claim


@pytest.mark.django_db(transaction=True)
def test_a_plot_edited_during_the_call_does_not_get_the_old_summary(bedrock_settings, tenant, emulator, on_aws_send):
    from django.db import connection

    from campaigns.plots import plots_short

    item = Item.dangerously_unscoped.create(tenant=tenant, external_id="long", title="Long One", plot=LONG)

    def edit():
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # a lock held across the call would fail this, not hang it
        Item.dangerously_unscoped.filter(pk=item.pk).update(plot="A new opening. " + LONG)

    shorten_sends(on_aws_send, lambda: in_another_thread(edit))
    assert plots_short(tenant=tenant, external_ids={"long"}) == {"long": ""}
    item.refresh_from_db()
    assert item.plot.startswith("A new opening.") and not item.short_plot and not item.short_plot_claim
    assert shorten_calls(tenant).count() == 1
    assert plots_short(tenant=tenant, external_ids={"long"})["long"].startswith("A new opening.")  # shortened again


def test_the_item_page_does_not_show_a_chunks_claim(staff_client, tenant):
    """The claim is plumbing: a marketer's item page does not show it (nor has a field for it to save)."""
    item = Item.dangerously_unscoped.create(tenant=tenant, external_id="m9", title="Heat", plot="A plot.",
                                            short_plot_claim="a-chunk")  # fmt: skip
    page = staff_client.get(f"/admin/datasets/item/{item.pk}/change/")
    assert page.status_code == 200 and b"Heat" in page.content
    assert b"claim" not in page.content.lower()
