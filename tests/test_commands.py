"""The demo and train_recommender commands, and the Personalize backend (through the emulator)."""

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from campaigns import generation, services
from campaigns.models import Campaign, EmailStatus, GeneratedEmail
from datasets.models import Interaction, Item
from recommendations.models import RecommenderModel
from recommendations.services import recommender_for
from saas.celery import app as celery_app
from tenants.models import Tenant


@pytest.fixture
def eager_tasks():
    """The embedded defaults run tasks in-process; the demo relies on that."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_demo_runs_every_stage(bedrock_settings, eager_tasks, tmp_path, capsys, transactional_db):
    bedrock_settings.VAR_DIR = tmp_path
    call_command("demo", contacts=4, send=2)
    out = capsys.readouterr().out
    tenant = Tenant.objects.get(slug="demo")
    emails = GeneratedEmail.objects.for_tenant(tenant)
    assert emails.count() == 4
    assert emails.filter(status=EmailStatus.SENT).count() == 2
    assert emails.filter(status=EmailStatus.DRAFT).count() == 2
    first = emails.order_by("pk").first()
    assert f"Subject: {first.subject}" in out and first.body.splitlines()[0] in out
    assert "Contacts: 4" in out and "Tokens:" in out and "per email" in out
    run = first.run
    desk = f"http://127.0.0.1:8000/admin/campaigns/generatedemail/desk/?run={run.pk}"
    *_, address, login = out.rstrip().splitlines()
    assert address == f"  {desk}" and login.startswith("  user: demo   password: ")
    password = login.split("password: ")[1].split()[0]
    assert authenticate(username="demo", password=password) is not None
    assert f"http://127.0.0.1:8000/admin/?run={run.pk}" in out
    progress_lines = [line for line in out.splitlines() if line.startswith("[")]
    assert "\r" not in out and 1 <= len(progress_lines) <= 11  # not a terminal: a line now and then, never redrawn
    assert RecommenderModel.objects.for_tenant(tenant).count() == 1
    call_command("demo", contacts=2, send=0)  # a second run reuses the data
    assert Item.objects.for_tenant(tenant).count() == 400
    assert GeneratedEmail.objects.for_tenant(tenant).count() == 6


def test_train_recommender_command(tenant, catalog, capsys):
    call_command("train_recommender", tenant="acme")
    call_command("train_recommender", tenant="acme")
    versions = list(RecommenderModel.objects.for_tenant(tenant).values_list("version", "n_interactions"))
    assert versions == [
        (1, Interaction.objects.for_tenant(tenant).count()),
        (2, Interaction.objects.for_tenant(tenant).count()),
    ]
    assert "recommender v2" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No tenant"):
        call_command("train_recommender", tenant="missing")


def test_training_without_interactions_says_what_to_do(tenant):
    with pytest.raises(CommandError, match="no interactions to train on; import some first"):
        call_command("train_recommender", tenant="acme")


def test_personalize_backend_serves_picks_from_the_recommender(bedrock_settings, scoped, tenant, catalog, emulator):
    contacts, items = catalog
    arn = "arn:aws:personalize:us-east-1:000000000000:recommender/acme-top-picks"
    emulator.personalize.load(
        arn,
        items=[
            {"ITEM_ID": i.external_id, "TITLE": i.title, "GENRES": "|".join(i.genres), "PLOT": i.plot} for i in items
        ],
        interactions=[
            {
                "USER_ID": x.contact.external_id,
                "ITEM_ID": x.item.external_id,
                "TIMESTAMP": int(x.timestamp.timestamp()),
                "EVENT_TYPE": x.event_type,
            }
            for x in Interaction.objects.select_related("contact", "item")
        ],
    )
    tenant.recommender = "personalize"
    tenant.personalize_recommender_arn = arn
    tenant.personalize_filter_arn = "arn:aws:personalize:us-east-1:000000000000:filter/exclude-watched"
    tenant.save()
    picks = recommender_for(tenant).top_picks(contacts[:2], 3)
    seen = set(contacts[0].interactions.values_list("item__external_id", flat=True))
    assert len(picks[contacts[0].pk]) == 3 and not seen & {p.external_id for p in picks[contacts[0].pk]}
    titles = {i.external_id: i.title for i in items}
    assert all(p.title == titles[p.external_id] and p.genres for p in picks[contacts[0].pk])
    assert len(emulator.requests.filter(operation="GetRecommendations", status=200)) == 2

    campaign = Campaign.objects.create(tenant=tenant, name="Personalized", n_items=2)
    run = services.campaign_launch(campaign=campaign, limit=2)
    for chunk in services.run_start(run=run, limit=2):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    email = GeneratedEmail.objects.filter(run=run).order_by("pk").first()
    assert email.status == EmailStatus.DRAFT
    expected = {p.external_id for p in recommender_for(tenant).top_picks([email.contact], 2)[email.contact_id]}
    assert {i["id"] for i in email.items} == expected


def test_personalize_tenant_without_arn_fails_with_next_step(scoped, tenant):
    tenant.recommender = "personalize"
    with pytest.raises(Exception, match="run personalize_sync first"):
        recommender_for(tenant)


def test_run_campaign_waits_and_summarises(bedrock_settings, eager_tasks, tenant, catalog, capsys, transactional_db):
    Campaign.dangerously_unscoped.create(tenant=tenant, name="Weekly")
    call_command("run_campaign", tenant="acme", campaign="Weekly", limit=3, wait=True)
    out = capsys.readouterr().out
    assert "run #" in out and "completed: {'draft': 3}" in out and "emails/s" in out and "3/3" in out
    assert "\r" not in out
    with pytest.raises(CommandError, match="No campaign 'Nope' in acme; its campaigns: Weekly"):
        call_command("run_campaign", tenant="acme", campaign="Nope")
