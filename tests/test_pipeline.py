"""A campaign run end to end through the services (the Celery tasks are thin wrappers around them),
with the Bedrock provider talking to the local emulator through real boto3."""

import pytest
from django.core import mail

from campaigns import generation, sending, services, tasks
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from datasets.consent import contact_unsubscribe
from datasets.models import ConsentSource, Contact
from routing.models import LLMCall


@pytest.fixture
def campaign(tenant, catalog):
    return Campaign.dangerously_unscoped.create(tenant=tenant, name="Spring picks", n_items=3, goal="spring")


def run_all(run, limit=None):
    for chunk in services.run_start(run=run, limit=limit):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    run.refresh_from_db()
    return run


def test_a_run_writes_one_validated_draft_per_contact(
    bedrock_settings, scoped, campaign, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = services.campaign_launch(campaign=campaign)
    assert len(callbacks) == 1  # the start task is dispatched only after commit
    run = run_all(run)
    assert (run.status, run.total, run.generated, run.failed) == (RunStatus.COMPLETED, 6, 6, 0)
    emails = GeneratedEmail.objects.filter(run=run).select_related("contact")
    assert emails.count() == 6
    for email in emails:
        assert email.status == EmailStatus.DRAFT
        assert len(email.items) == 3
        assert email.contact.first_name in email.body
        for item in email.items:
            assert item["title"] in email.body
        assert email.body.rstrip().endswith("Ana from Acme Video")
        assert "<movie>" in email.prompt and "<user>" in email.prompt
        assert email.model_key == "bedrock/nova-lite" and "plan basic" in email.route_reason
        assert email.input_tokens > 0 and email.output_tokens > 0 and email.cost_usd > 0
    seen = set(Contact.objects.get(pk=emails[0].contact_id).interactions.values_list("item__external_id", flat=True))
    assert not seen & {item["id"] for item in emails[0].items}
    calls = LLMCall.objects.filter(ok=True)
    assert calls.count() == 6 and run.input_tokens == sum(c.input_tokens for c in calls)


def test_pro_tenants_get_the_large_model(bedrock_settings, scoped, tenant, campaign):
    tenant.plan = "pro"
    tenant.save()
    run = run_all(services.campaign_launch(campaign=campaign), limit=1)
    call = LLMCall.objects.get()
    assert call.model_key == "bedrock/claude-3.7-sonnet"
    assert call.model_id.startswith("us.anthropic.") and call.cost_usd > 0
    assert run.status == RunStatus.COMPLETED


def test_a_retried_chunk_skips_finished_contacts(bedrock_settings, scoped, campaign):
    run = services.campaign_launch(campaign=campaign)
    chunks = services.run_start(run=run)
    ids = [cid for chunk in chunks for cid in chunk]
    generation.run_generate_chunk(run=run, contact_ids=ids[:3])
    assert generation.run_generate_chunk(run=run, contact_ids=ids) == 3
    assert generation.run_generate_chunk(run=run, contact_ids=ids) == 0
    assert GeneratedEmail.objects.filter(run=run).count() == 6 and LLMCall.objects.count() == 6


def test_two_runs_of_one_campaign_cannot_be_active(bedrock_settings, scoped, campaign):
    first = services.campaign_launch(campaign=campaign)
    with pytest.raises(services.CampaignError, match=f"already has an active run \\(#{first.pk}\\)"):
        services.campaign_launch(campaign=campaign)
    run_all(first)
    assert services.campaign_launch(campaign=campaign).pk != first.pk


def test_unsubscribed_contacts_are_not_in_the_audience(bedrock_settings, scoped, campaign, catalog):
    contact_unsubscribe(contact=catalog[0][0], source=ConsentSource.API, by="test")
    run = run_all(services.campaign_launch(campaign=campaign))
    assert run.total == 5
    assert not GeneratedEmail.objects.filter(contact=catalog[0][0]).exists()


def test_model_errors_become_failures_with_the_reason(bedrock_settings, scoped, campaign, emulator):
    emulator.configure(error_rate=1.0)
    run = run_all(services.campaign_launch(campaign=campaign), limit=2)
    assert (run.status, run.failed) == (RunStatus.COMPLETED, 2)
    email = GeneratedEmail.objects.filter(run=run).first()
    assert email.status == EmailStatus.FAILED and "model call failed" in email.failure_reason
    assert LLMCall.objects.filter(ok=False).count() == 2 * bedrock_settings.LLM_MAX_ATTEMPTS


def test_throttling_is_retried_by_botocore_and_seen_on_the_wire(bedrock_settings, scoped, campaign, emulator):
    emulator.configure(fail_next=2)
    run = run_all(services.campaign_launch(campaign=campaign), limit=1)
    assert run.generated == 1
    converse = [r for r in emulator.requests if r.operation == "Converse"]
    assert [r.status for r in converse] == [429, 429, 200]


def test_quota_limits_the_audience(bedrock_settings, scoped, tenant, campaign):
    tenant.monthly_email_quota = 4
    tenant.save()
    with pytest.raises(services.CampaignError, match="only 4 remain"):
        services.campaign_launch(campaign=campaign)


def test_review_then_send_exactly_once(bedrock_settings, scoped, campaign, catalog):
    run = run_all(services.campaign_launch(campaign=campaign), limit=3)
    first, second, third = GeneratedEmail.objects.filter(run=run).order_by("pk").select_related("contact", "tenant")
    first.approve(by="rita")
    second.edit_and_approve(by="rita", subject="Edited subject", body="Edited body for you.")
    third.reject(by="rita", reason="too pushy")
    in_process = lambda pk, tenant_id: tasks.email_send.apply((pk, tenant_id)).get()  # noqa: E731
    assert sending.run_send_approved(run=run, enqueue=in_process) == 2  # queued: one task per approved email
    assert sending.run_send_counts(run=run) == {EmailStatus.SENT: 2, EmailStatus.REJECTED: 1}
    assert sending.run_send_approved(run=run, enqueue=in_process) == 0
    assert sending.email_send(email=first) == EmailStatus.SENT  # a second send of the same email does nothing
    assert len(mail.outbox) == 2
    edited = next(m for m in mail.outbox if m.subject == "Edited subject")
    assert "Edited body for you." in edited.body and second.contact.email in edited.to[0]
    assert edited.extra_headers["List-Unsubscribe"].startswith("<http")
    assert "1 Acme Road, Springfield" in edited.body
    first.refresh_from_db()
    assert first.status == EmailStatus.SENT and first.message_id and first.sent_at


def test_contacts_who_unsubscribe_after_approval_are_never_sent(bedrock_settings, scoped, campaign):
    run = run_all(services.campaign_launch(campaign=campaign), limit=1)
    email = GeneratedEmail.objects.select_related("contact", "tenant").get(run=run)
    email.approve(by="rita")
    contact_unsubscribe(contact=email.contact, source=ConsentSource.UNSUBSCRIBE_LINK, by="recipient")
    assert sending.email_send(email=email) == EmailStatus.SUPPRESSED
    assert mail.outbox == []


def test_send_failure_leaves_the_email_approved_for_a_retry(bedrock_settings, scoped, campaign, settings):
    run = run_all(services.campaign_launch(campaign=campaign), limit=1)
    email = GeneratedEmail.objects.select_related("contact", "tenant").get(run=run)
    email.approve(by="rita")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    with pytest.raises(OSError):
        sending.email_send(email=email)
    email.refresh_from_db()
    assert email.status == EmailStatus.APPROVED and "Error" in email.send_error


def test_review_transitions_are_conditional(bedrock_settings, scoped, campaign):
    from campaigns.models import InvalidTransition

    run = run_all(services.campaign_launch(campaign=campaign), limit=1)
    email = GeneratedEmail.objects.get(run=run)
    stale = GeneratedEmail.objects.get(pk=email.pk)
    email.approve(by="a")
    with pytest.raises(InvalidTransition, match="is approved"):
        stale.approve(by="b")
    with pytest.raises(Exception, match="needs a reason"):
        email.reject(by="a", reason="  ")


def test_review_without_review_required_approves_directly(bedrock_settings, scoped, campaign):
    campaign.review_required = False
    campaign.save()
    run = run_all(services.campaign_launch(campaign=campaign), limit=2)
    assert set(GeneratedEmail.objects.filter(run=run).values_list("status", flat=True)) == {EmailStatus.APPROVED}


def test_runs_and_emails_cascade_stay_in_their_tenant(bedrock_settings, scoped, campaign, other_tenant):
    run = run_all(services.campaign_launch(campaign=campaign), limit=1)
    assert CampaignRun.objects.for_tenant(other_tenant).count() == 0
    assert GeneratedEmail.objects.for_tenant(other_tenant).count() == 0
    assert run.tenant_id == campaign.tenant_id


def test_campaign_pick_options_reach_the_recommender(bedrock_settings, scoped, campaign, catalog):
    contacts, items = catalog
    genre_of = {i.external_id: i.genres[0] for i in items}
    campaign.exclude_genres = ["Comedy"]
    campaign.n_items = 2
    campaign.save()
    run = run_all(services.campaign_launch(campaign=campaign), limit=2)
    first = GeneratedEmail.objects.filter(run=run).order_by("contact_id").first()
    assert first.items and all(genre_of[i["id"]] != "Comedy" for i in first.items)

    first.approve(by="rita")
    sending.email_send(email=GeneratedEmail.objects.select_related("contact", "tenant").get(pk=first.pk))
    campaign.exclude_genres, campaign.skip_emailed_days = [], 30
    campaign.save()
    again = run_all(services.campaign_launch(campaign=campaign), limit=2)
    second = GeneratedEmail.objects.get(run=again, contact=first.contact)
    assert not {i["id"] for i in first.items} & {i["id"] for i in second.items}  # nothing sent twice in 30 days


def test_the_catalog_titles_a_run_checks_against_are_never_older_than_the_run_or_a_minute(
    scoped, tenant, campaign, catalog, monkeypatch
):
    """An item added after a run has read the catalog is known to every later run at once, and to that run after a
    minute; the per-process cache holds a few runs, not every run it ever saw."""
    from campaigns.validation import normalize
    from datasets.models import Item

    clock = [1000.0]
    monkeypatch.setattr(generation.time, "monotonic", lambda: clock[0])
    runs = [CampaignRun.objects.create(tenant=tenant, campaign=campaign, status=RunStatus.COMPLETED) for _ in range(6)]
    new = normalize("Brand New Release")
    assert new not in generation.catalog_titles(runs[0])
    Item.objects.create(tenant=tenant, external_id="new", title="Brand New Release", genres=["Drama"])
    assert new in generation.catalog_titles(runs[1])
    assert new not in generation.catalog_titles(runs[0])  # the same run, within the minute
    clock[0] += generation.TITLES_FRESH_SECONDS
    assert new in generation.catalog_titles(runs[0])
    for run in runs:
        generation.catalog_titles(run)
    assert len(generation._titles) == generation.TITLES_KEPT


def test_a_tenant_template_in_the_seed_articles_shape_writes_good_drafts_on_the_emulator(
    bedrock_settings, scoped, tenant, campaign
):
    """The seed article's prompt (free-text user, the picks as one JSON list) is a tenant template like any other:
    on the emulator it greets each contact by name and names each pick, and the drafts pass validation."""
    from campaigns.models import PromptTemplate

    campaign.template = PromptTemplate.dangerously_unscoped.create(
        tenant=tenant, name="seed article",
        body="Write a personalised marketing email for this user, recommending the movies.\n"
        "<user>a {{ contact.age }} year old {{ contact.gender }} called {{ contact.first_name }}</user>\n"
        "<movie>{{ items | tojson }}</movie>\n<signoff>{{ signoff }}</signoff>\n"
        "Put the subject in <subject></subject> and the email in <body></body>.",
    )  # fmt: skip
    campaign.save()
    run = run_all(services.campaign_launch(campaign=campaign))
    assert (run.generated, run.failed) == (6, 0)
    for email in GeneratedEmail.objects.filter(run=run).select_related("contact"):
        assert email.status == EmailStatus.DRAFT, email.failure_reason
        assert email.body.startswith(
            tuple(f"{hi} {email.contact.first_name}," for hi in ("Hi", "Hello", "Hey", "Dear"))
        )
        assert all(email.body.count(item["title"]) == 1 for item in email.items), email.body
        assert '"title"' in email.prompt and "called " + email.contact.first_name in email.prompt
