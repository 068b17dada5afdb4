"""A tenant's Bedrock guardrail where it chose to use it: inside every model call (guardrailConfig), or on every
finished draft (ApplyGuardrail, whichever model wrote it), with a blocked draft written again and, when the
attempts run out, stored as failed with the reason. Boto3 talks to the local emulator over HTTP."""

import pytest

from campaigns import generation, services
from campaigns.models import Campaign, EmailStatus, GeneratedEmail
from tenants.models import GuardrailUse


def run_all(tenant, n: int):
    run = services.campaign_launch(campaign=Campaign.objects.create(tenant=tenant, name="guarded"), limit=n)
    for chunk in services.run_start(run=run, limit=n):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    run.refresh_from_db()
    return run, list(GeneratedEmail.objects.filter(run=run).select_related("contact").order_by("contact__external_id"))


def guard(tenant, emulator, guardrail_id="gr-acme", use=GuardrailUse.DRAFTS, **definition):
    if definition:
        emulator.guardrails.define(guardrail_id, version="1", **definition)
    tenant.bedrock_guardrail_id, tenant.bedrock_guardrail_version, tenant.guardrail_use = guardrail_id, "1", use
    tenant.save()


def operations(emulator, name) -> int:
    return len(emulator.requests.filter(operation=name, status=200))


def test_each_draft_is_screened_and_a_blocked_one_is_written_again_then_failed(
    bedrock_settings, scoped, tenant, catalog, emulator
):
    bedrock_settings.LLM_MAX_ATTEMPTS = 2
    guard(tenant, emulator, words=["Name0"])  # the emulator's emails greet the contact by first name
    run, (blocked, *passed) = run_all(tenant, 3)

    assert (blocked.contact.first_name, blocked.status, blocked.attempts) == ("Name0", EmailStatus.FAILED, 2)
    assert blocked.failure_reason.startswith("blocked by the tenant's Bedrock guardrail")
    assert [(e.status, e.attempts) for e in passed] == [(EmailStatus.DRAFT, 1)] * 2
    assert all("Name0" not in e.body for e in passed)
    # Screened after the model answered, not inside the call: each attempt's draft got one ApplyGuardrail, and the
    # model calls went without the guardrail (with it, the blocked contact's calls would have stopped there).
    assert operations(emulator, "Converse") == 4
    assert operations(emulator, "ApplyGuardrail") == 4
    assert (run.generated, run.failed) == (2, 1)


def test_the_retry_is_told_why_the_draft_was_blocked(bedrock_settings, scoped, tenant, catalog, emulator):
    bedrock_settings.LLM_MAX_ATTEMPTS = 2
    guard(tenant, emulator, words=["Name0"])
    _, (blocked, *_) = run_all(tenant, 1)
    assert blocked.contact.first_name == "Name0"
    draft = generation.Draft(blocked.contact, {})
    assert not generation.draft_passes_guardrail(draft, tenant, f"Hi {blocked.contact.first_name}, enjoy")
    assert "blocked by the brand's content policy" in draft.feedback and draft.ready


def test_with_the_guardrail_inside_model_calls_drafts_are_not_screened_again(
    bedrock_settings, scoped, tenant, catalog, emulator
):
    guard(tenant, emulator, use=GuardrailUse.MODEL_CALLS, words=["Name0"])
    _, (blocked, *passed) = run_all(tenant, 3)
    assert blocked.status == EmailStatus.FAILED and "guardrail" in blocked.failure_reason
    assert all(e.status == EmailStatus.DRAFT for e in passed)
    assert operations(emulator, "ApplyGuardrail") == 0


def test_a_guardrail_that_cannot_be_found_fails_each_email_with_the_reason(
    bedrock_settings, scoped, tenant, catalog, emulator
):
    guard(tenant, emulator, guardrail_id="gr-missing")  # never defined: Bedrock answers 404, permanently
    run, emails = run_all(tenant, 2)
    for email in emails:
        assert (email.status, email.attempts) == (EmailStatus.FAILED, 1)
        assert email.failure_reason.startswith("guardrail screening failed:") and "gr-missing" in email.failure_reason
    assert run.failed == 2


@pytest.mark.parametrize("use", [GuardrailUse.DRAFTS, GuardrailUse.MODEL_CALLS])
def test_without_a_guardrail_nothing_is_screened(bedrock_settings, scoped, tenant, catalog, emulator, use):
    tenant.guardrail_use = use
    tenant.save()
    _, emails = run_all(tenant, 2)
    assert all(e.status == EmailStatus.DRAFT for e in emails)
    assert operations(emulator, "ApplyGuardrail") == 0


def test_each_screening_is_a_usage_record_priced_by_the_units_bedrock_bills(
    bedrock_settings, scoped, tenant, catalog, emulator
):
    from decimal import Decimal

    from routing.catalog import GUARDRAIL_KEY
    from routing.models import LLMCall

    guard(tenant, emulator, words=["Name0"], emails="BLOCK")  # word filters are free, e-mail detection is not
    run, emails = run_all(tenant, 3)
    screens = LLMCall.objects.filter(model_key=GUARDRAIL_KEY)
    assert screens.count() == operations(emulator, "ApplyGuardrail") == 4  # the blocked contact's two drafts
    assert {(s.task, s.model_id, s.ok) for s in screens} == {("guardrail_screen", "gr-acme:1", True)}
    for screen in screens:
        assert screen.cost_usd == Decimal("0.10") / 1000  # one text unit of sensitive-information filtering
    models = LLMCall.objects.exclude(model_key=GUARDRAIL_KEY)
    assert sum(e.cost_usd for e in emails) == sum(c.cost_usd for c in models) + sum(s.cost_usd for s in screens)
    assert run.cost_usd == sum(e.cost_usd for e in emails)
