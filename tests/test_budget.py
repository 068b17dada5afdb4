"""Budgets in dollars: reserved before each call at its estimated cost, settled to the actual cost after, refused
with the limit named when the month's budget cannot cover a call; two real Celery workers racing for the last of a
budget never spend more than it."""

from decimal import Decimal

import pytest

from campaigns import generation, services
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from recommendations.services import current_engine
from routing.budget import BudgetExceeded, budget_reserve, budget_settle, call_estimate
from routing.catalog import get_model
from routing.models import LLMCall, SpendUsage
from routing.types import LLMRequest
from tenants.scoping import tenant_scope
from tenants.services import quota_month
from tests.conftest import api_client, make_catalog
from tests.llm import llm_call
from tests.workers import wait_for

LITE = "bedrock/nova-lite"


def set_budget(tenant, dollars: str, *, spent: str = "0"):
    tenant.monthly_budget_usd = Decimal(dollars)
    tenant.save(update_fields=["monthly_budget_usd"])
    SpendUsage.objects.update_or_create(tenant=tenant, month=quota_month(), defaults={"spent_usd": Decimal(spent)})


def ledger(tenant) -> SpendUsage:
    return SpendUsage.objects.get(tenant=tenant, month=quota_month())


def test_a_call_reserves_its_estimate_and_settles_to_its_cost(bedrock_settings, tenant, emulator):
    set_budget(tenant, "5")
    response, call = llm_call(tenant=tenant, task="marketing_email", system="be brief", prompt="Say hello")
    row = ledger(tenant)
    assert call.cost_usd > 0 and (row.spent_usd, row.reserved_usd) == (call.cost_usd, 0)
    request = LLMRequest(get_model(LITE).model_id, "be brief", "Say hello", max_tokens=700)
    assert call_estimate(get_model(LITE), request) > call.cost_usd  # an upper bound


def test_a_call_over_budget_is_refused_naming_the_limit(bedrock_settings, tenant, emulator):
    set_budget(tenant, "5.00", spent="4.9999")
    with pytest.raises(BudgetExceeded) as raised:
        llm_call(tenant=tenant, task="marketing_email", system="s", prompt="Say hello")
    assert raised.value.permanent and raised.value.code == "BudgetExceeded"
    assert str(raised.value).startswith("monthly budget $5.00 reached: $4.9999 spent; this needs up to $0.0002")
    assert not emulator.requests.filter(operation="Converse")  # no call was made
    assert (ledger(tenant).spent_usd, ledger(tenant).reserved_usd) == (Decimal("4.9999"), 0)
    refused = LLMCall.objects.for_tenant(tenant).get()
    assert not refused.ok and refused.error.startswith("BudgetExceeded: monthly budget $5.00 reached")


def test_a_reservation_takes_what_remains_or_is_refused(tenant):
    set_budget(tenant, "1.00", spent="0.70")
    first = budget_reserve(tenant=tenant, wanted=Decimal("0.50"), at_least=Decimal("0.10"))
    assert first.granted == Decimal("0.30") and ledger(tenant).reserved_usd == Decimal("0.30")
    with pytest.raises(BudgetExceeded, match=r"monthly budget \$1.00 reached: \$0.70 spent, \$0.30 held by calls"):
        budget_reserve(tenant=tenant, wanted=Decimal("0.01"), wait_seconds=0.3)  # waits for what is held, then no
    first.take(Decimal("0.25"))
    with pytest.raises(BudgetExceeded, match="monthly budget"):
        first.take(Decimal("0.06"))
    budget_settle(first, Decimal("0.2"))
    assert (ledger(tenant).spent_usd, ledger(tenant).reserved_usd) == (Decimal("0.9"), 0)


def test_a_draft_over_budget_fails_with_the_limit_as_its_reason(bedrock_settings, scoped, tenant, catalog, emulator):
    set_budget(tenant, "0.01", spent="0.01")
    run = services.campaign_launch(campaign=Campaign.objects.create(tenant=tenant, name="broke"), limit=2)
    for chunk in services.run_start(run=run, limit=2):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    emails = GeneratedEmail.objects.filter(run=run)
    assert [e.status for e in emails] == [EmailStatus.FAILED] * 2
    assert all("monthly budget $0.01 reached: $0.01 spent" in e.failure_reason for e in emails), emails[
        0
    ].failure_reason
    assert not emulator.requests.filter(operation="Converse")
    assert (ledger(tenant).spent_usd, ledger(tenant).reserved_usd) == (Decimal("0.01"), 0)


@pytest.mark.worker
def test_two_workers_racing_for_the_last_of_a_budget_never_spend_more(start_worker, tenant, emulator):
    tenant.plan = "pro"  # Claude 3.7 Sonnet: about a cent per call reserved, a third of that spent
    tenant.save(update_fields=["plan"])
    set_budget(tenant, "0.03")
    workers = [start_worker(CAMPAIGN_CHUNK_SIZE="2"), start_worker(CAMPAIGN_CHUNK_SIZE="2")]
    make_catalog(tenant, n_contacts=8, n_items=12)
    with tenant_scope(tenant):  # trained once up front: two runs starting at once would both train (a race of its own)
        current_engine(tenant)
    client = api_client(tenant)
    run_ids = []
    for i in range(2):
        campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name=f"race {i}", n_items=2)
        launched = client.post(f"/api/v1/campaigns/{campaign.pk}/launch/", {}, format="json")
        assert launched.status_code == 202, launched.content
        run_ids.append(launched.json()["id"])
    runs = CampaignRun.dangerously_unscoped.filter(pk__in=run_ids)
    for worker in workers:
        wait_for(lambda: all(r.status == RunStatus.COMPLETED for r in runs.all()), worker=worker, what="both runs")
    # The judge scores each draft after its chunk, each call on a reservation of its own: the ledger settles when
    # the last verdict is in (a run completes before its last chunk's judge has run).
    unjudged = GeneratedEmail.dangerously_unscoped.filter(run_id__in=run_ids, status=EmailStatus.DRAFT, judged_at=None)
    wait_for(lambda: not unjudged.exists(), worker=workers[0], what="the judge to score every draft")
    row = ledger(tenant)
    calls = LLMCall.dangerously_unscoped.filter(tenant=tenant)
    spent = sum(c.cost_usd for c in calls)
    assert row.reserved_usd == 0 and abs(row.spent_usd - spent) < Decimal("0.000001")
    # Within the budget, and near it: the drafts were refused because it was spent, not because it was held.
    assert Decimal("0.015") < row.spent_usd <= Decimal("0.03"), row.spent_usd
    emails = GeneratedEmail.dangerously_unscoped.filter(run_id__in=run_ids)
    written = emails.filter(status=EmailStatus.DRAFT)
    refused = emails.filter(status=EmailStatus.FAILED, failure_reason__contains="monthly budget $0.03 reached")
    assert written.exists() and refused.exists(), [(e.status, e.failure_reason) for e in emails]
    assert written.count() + refused.count() == emails.count() == 16
    print(f"budget $0.03: spent ${row.spent_usd}, {written.count()} written, {refused.count()} refused")
    # Both worker processes wrote chunks: the budget was raced for, not taken in turn by one process.
    assert all("run_generate_chunk" in w.output() and "succeeded" in w.output() for w in workers)


def test_what_a_killed_worker_held_comes_back_when_its_hold_expires(tenant, monkeypatch, settings):
    """A worker killed mid-chunk never settles its reservation. Its hold lasts as long as a task can live (the
    hard time limit, and a minute), then the dollars it held are the tenant's again; until then they stay held."""
    from datetime import timedelta

    from django.utils import timezone

    settings.CELERY_TASK_TIME_LIMIT = 600
    set_budget(tenant, "1.00")
    start = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: start)
    budget_reserve(tenant=tenant, wanted=Decimal("0.80"))  # the worker dies here: no settle
    with pytest.raises(BudgetExceeded, match=r"\$0.80 held by calls in flight"):
        budget_reserve(tenant=tenant, wanted=Decimal("0.50"), wait_seconds=0)
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=600 + 59))
    with pytest.raises(BudgetExceeded):
        budget_reserve(tenant=tenant, wanted=Decimal("0.50"), wait_seconds=0)
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=600 + 61))
    again = budget_reserve(tenant=tenant, wanted=Decimal("0.50"), wait_seconds=0)
    assert again.granted == Decimal("0.50") and ledger(tenant).reserved_usd == Decimal("0.50")
    budget_settle(again, Decimal("0.10"))
    assert (ledger(tenant).spent_usd, ledger(tenant).reserved_usd) == (Decimal("0.10"), 0)


def test_a_late_settle_after_its_hold_expired_books_the_spend_once(tenant, monkeypatch, settings):
    """A chunk that outlived its hold (it cannot, under the time limit, but a clock can jump) still books what it
    spent, and does not give back a second time what the expiry already gave back."""
    from datetime import timedelta

    from django.utils import timezone

    settings.CELERY_TASK_TIME_LIMIT = 600
    set_budget(tenant, "1.00")
    start = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: start)
    slow = budget_reserve(tenant=tenant, wanted=Decimal("0.40"))
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(hours=1))
    other = budget_reserve(tenant=tenant, wanted=Decimal("0.30"))  # sweeps the expired hold
    budget_settle(slow, Decimal("0.05"))
    assert (ledger(tenant).spent_usd, ledger(tenant).reserved_usd) == (Decimal("0.05"), Decimal("0.30"))
    budget_settle(other, Decimal("0.30"))
    assert (ledger(tenant).spent_usd, ledger(tenant).reserved_usd) == (Decimal("0.35"), 0)
