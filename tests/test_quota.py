"""The monthly email quota: reserved atomically at launch (two launches can never both take the last of it),
every generation counts (regenerations too), a run gives back what it did not use exactly once, and deleting
emails or usage records frees nothing."""

import threading

import pytest
from django.db import connections

from campaigns import generation, runs, services, tasks
from campaigns.models import Campaign, CampaignRun, GeneratedEmail, RunStatus
from datasets.models import Contact
from routing.models import LLMCall
from tenants.scoping import tenant_scope


@pytest.fixture
def quiet_dispatch(monkeypatch):
    """Tasks dispatched after commit are collected, not sent: these tests drive the services themselves."""
    sent = []
    for task in (tasks.run_start, tasks.email_regenerate):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: sent.append((task.name, args)))
    return sent


def write_all(run, limit=None):
    with tenant_scope(run.tenant):
        for chunk in services.run_start(run=run, limit=limit):
            generation.run_generate_chunk(run=run, contact_ids=chunk)
    run.refresh_from_db()
    return run


def set_quota(tenant, quota):
    tenant.monthly_email_quota = quota
    tenant.save(update_fields=["monthly_email_quota"])


def test_two_concurrent_launches_cannot_both_take_the_last_of_the_quota(
    bedrock_settings, tenant, catalog, quiet_dispatch, transactional_db
):
    set_quota(tenant, 6)
    campaigns = [Campaign.dangerously_unscoped.create(tenant=tenant, name=f"c{i}") for i in range(2)]
    barrier, outcomes = threading.Barrier(2), []

    def launch(campaign):
        try:
            with tenant_scope(tenant):
                barrier.wait()
                outcomes.append(services.campaign_launch(campaign=campaign, limit=4))
        except services.CampaignError as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=launch, args=(c,)) for c in campaigns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    runs = [o for o in outcomes if isinstance(o, CampaignRun)]
    refused = [o for o in outcomes if isinstance(o, services.CampaignError)]
    assert len(runs) == 1 and len(refused) == 1, outcomes
    assert "needs 4 emails but only 2 remain" in str(refused[0])
    assert CampaignRun.dangerously_unscoped.filter(tenant=tenant).count() == 1


def test_a_queued_run_holds_its_share_before_anything_is_written(bedrock_settings, scoped, tenant, catalog):
    set_quota(tenant, 6)
    first, second = (Campaign.objects.create(tenant=tenant, name=f"c{i}") for i in range(2))
    services.campaign_launch(campaign=first, limit=4)
    with pytest.raises(services.CampaignError, match="needs 3 emails but only 2 remain"):
        services.campaign_launch(campaign=second, limit=3)
    assert services.campaign_launch(campaign=second, limit=2).total == 2


def test_regenerations_count(bedrock_settings, scoped, tenant, catalog, django_capture_on_commit_callbacks):
    set_quota(tenant, 4)
    first, second = (Campaign.objects.create(tenant=tenant, name=f"c{i}") for i in range(2))
    run = write_all(services.campaign_launch(campaign=first, limit=3), limit=3)
    email = GeneratedEmail.objects.filter(run=run).first()
    with django_capture_on_commit_callbacks(execute=True):
        services.email_regenerate_request(email=email)
    with pytest.raises(services.CampaignError, match="only 0 remain"):
        services.campaign_launch(campaign=second, limit=1)
    with pytest.raises(services.CampaignError, match="only 0 remain"):
        services.email_regenerate_request(email=GeneratedEmail.objects.filter(run=run).last())


def test_deleting_emails_or_usage_records_frees_nothing(bedrock_settings, scoped, tenant, catalog):
    set_quota(tenant, 3)
    first, second = (Campaign.objects.create(tenant=tenant, name=f"c{i}") for i in range(2))
    run = write_all(services.campaign_launch(campaign=first, limit=3), limit=3)
    assert run.status == RunStatus.COMPLETED and run.generated == 3
    GeneratedEmail.objects.filter(run=run).delete()
    LLMCall.objects.all().delete()
    runs.run_refresh(run=run)  # a later recount of the emptied run
    with pytest.raises(services.CampaignError, match="only 0 remain"):
        services.campaign_launch(campaign=second, limit=1)


def test_a_cancelled_run_gives_back_its_reservation_exactly_once(bedrock_settings, scoped, tenant, catalog):
    set_quota(tenant, 6)
    first, second = (Campaign.objects.create(tenant=tenant, name=f"c{i}") for i in range(2))
    run = services.campaign_launch(campaign=first)
    assert services.run_cancel(run=run) and not services.run_cancel(run=run)
    runs.run_refresh(run=run)
    runs.run_refresh(run=run)
    again = services.campaign_launch(campaign=second)  # all 6 are free again, and no more than 6
    assert again.total == 6
    with pytest.raises(services.CampaignError, match="only 0 remain"):
        services.campaign_launch(campaign=first, limit=1)


def test_a_run_that_writes_fewer_emails_than_it_reserved_gives_back_the_rest(bedrock_settings, scoped, tenant, catalog):
    set_quota(tenant, 6)
    first, second = (Campaign.objects.create(tenant=tenant, name=f"c{i}") for i in range(2))
    run = services.campaign_launch(campaign=first)  # reserves 6
    Contact.objects.filter(pk__in=[c.pk for c in catalog[0][:2]]).update(unsubscribed=True)
    run = write_all(run)
    assert (run.status, run.total, run.generated) == (RunStatus.COMPLETED, 4, 4)
    runs.run_refresh(run=run)  # counted again: given back once only
    assert services.campaign_launch(campaign=second, limit=2).total == 2
    with pytest.raises(services.CampaignError, match="only 0 remain"):
        services.campaign_launch(campaign=first, limit=1)


def test_the_migration_counts_this_months_runs_so_a_deploy_hands_out_nothing_twice(tenant, catalog):
    from importlib import import_module

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    from tenants.models import QuotaUsage
    from tenants.services import quota_month

    migration = import_module("campaigns.migrations.0006_run_quota_and_regenerating")
    campaigns = [Campaign.dangerously_unscoped.create(tenant=tenant, name=f"c{i}") for i in range(2)]
    ended = CampaignRun.dangerously_unscoped.create(
        tenant=tenant, campaign=campaigns[0], status=RunStatus.COMPLETED, total=5, generated=3, failed=1
    )
    active = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaigns[1], status="running", total=6)
    state = MigrationLoader(connection).project_state(("campaigns", "0006_run_quota_and_regenerating"))
    migration.reserve_existing(state.apps, None)  # the models as the migration sees them
    ended.refresh_from_db()
    active.refresh_from_db()
    assert (ended.quota_reserved, ended.quota_settled, active.quota_reserved, active.quota_settled) == (
        4,
        True,
        6,
        False,
    )
    assert QuotaUsage.objects.get(tenant=tenant, month=quota_month()).reserved == 10


def test_emails_a_chunk_stores_after_its_run_was_cancelled_still_count(bedrock_settings, scoped, tenant, catalog):
    set_quota(tenant, 6)
    first, second = (Campaign.objects.create(tenant=tenant, name=f"c{i}") for i in range(2))
    run = services.campaign_launch(campaign=first)
    services.run_start(run=run)
    services.run_cancel(run=run)  # all 6 given back
    for contact in catalog[0][:2]:  # a chunk that was already writing when the run was cancelled
        GeneratedEmail.objects.create(tenant=tenant, run=run, contact=contact, subject="s", body="b")
    runs.run_refresh(run=run)
    runs.run_refresh(run=run)
    with pytest.raises(services.CampaignError, match="needs 5 emails but only 4 remain"):
        services.campaign_launch(campaign=second, limit=5)
