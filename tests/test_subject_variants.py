"""Subject-line variants through the real generation path (the emulator's model, real boto3, PostgreSQL): N
candidates per email on the "subject" route, parsed from a strict format; a bad answer or failed call keeps the
body's subject and says why; "ab" splits contacts deterministically; "pick" is the reviewer's recorded edit."""

from collections import Counter

import pytest

from campaigns import generation, services
from campaigns.models import Campaign, EmailEvent, EmailStatus, EventKind, GeneratedEmail
from campaigns.subjects import ab_variant, parse_variants
from routing.models import LLMCall

API = "/api/v1"
NOVA_MICRO = "us.amazon.nova-micro-v1:0"  # the subject route's model on every plan


def run_campaign(tenant, name="subjects", limit=6, **options):
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name=name, n_items=2, **options)
    run = services.campaign_launch(campaign=campaign, limit=limit)
    for chunk in services.run_start(run=run, limit=limit):
        generation.run_generate_chunk(run=run, contact_ids=chunk)
    return list(GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk"))


def written(emails):
    return [e for e in emails if e.status in (EmailStatus.DRAFT, EmailStatus.APPROVED)]


@pytest.fixture
def world(bedrock_settings, tenant, catalog):
    return catalog


def test_one_variant_is_todays_behaviour(tenant, world):
    emails = written(run_campaign(tenant))
    assert emails and all(e.subject and e.subject_candidates == [] and e.subject_variant is None for e in emails)
    assert not LLMCall.dangerously_unscoped.filter(tenant=tenant, task="subject").exists()


def test_variants_are_written_in_one_call_per_email_and_the_first_is_the_default(tenant, world):
    emails = written(run_campaign(tenant, subject_variants=3))
    assert emails
    calls = LLMCall.dangerously_unscoped.filter(tenant=tenant, task="subject")
    assert calls.count() == len(emails) and {c.model_key for c in calls} == {"bedrock/nova-micro"}
    assert all(c.ok and c.cost_usd > 0 for c in calls)
    for email in emails:
        assert len(email.subject_candidates) == 3 and len(set(email.subject_candidates)) == 3
        assert email.subject_variant == 0 and email.subject == email.subject_candidates[0]
        assert email.contact.first_name in email.subject
        body_calls = LLMCall.dangerously_unscoped.filter(run_id=email.run_id).exclude(task="subject")
        assert email.cost_usd > 0 and body_calls.exists()  # the email's cost counts its subject call too


def test_a_failed_subject_call_keeps_the_bodys_subject_and_says_why(tenant, world, emulator):
    emulator.configure(model_id=NOVA_MICRO, fail_next=1000, fail_with="internal")
    emails = run_campaign(tenant, subject_variants=2)
    assert emails and all(e.status in (EmailStatus.DRAFT, EmailStatus.APPROVED) for e in emails)
    for email in emails:
        assert email.subject and email.subject_candidates == [] and email.subject_variant is None
        assert any("subject variants: model call failed" in check["problem"] for check in email.checks)


def test_the_answer_is_parsed_leniently_and_bad_answers_are_refused():
    messy = ' <Variant> "Hello Ann" </variant>\n<VARIANT>1. Your picks</VARIANT><variant>hello ann</variant>'
    assert parse_variants(messy, 3) == (["Hello Ann", "Your picks"], "the answer had 2 usable subject lines of 3")
    assert parse_variants("<variant>A</variant><variant>B</variant><variant>C</variant>", 2) == (["A", "B"], "")
    for bad in ("Subject: Hello Ann\nSubject: Your picks", "", "<variant></variant><variant>only</variant>",
                "<variant>" + "x" * 301 + "</variant><variant>ok</variant>", "<subject>One</subject>"):  # fmt: skip
        candidates, problem = parse_variants(bad, 2)
        assert candidates == [] and "usable <variant>" in problem


def test_ab_splits_contacts_deterministically_and_about_evenly(tenant, world):
    arms = Counter(ab_variant(campaign_id=7, contact_id=i, n=3) for i in range(3000))
    assert set(arms) == {0, 1, 2} and all(900 < count < 1100 for count in arms.values())
    assert [ab_variant(campaign_id=7, contact_id=i, n=3) for i in range(50)] == [
        ab_variant(campaign_id=7, contact_id=i, n=3) for i in range(50)
    ]
    emails = written(run_campaign(tenant, subject_variants=3, subject_mode="ab"))
    campaign_id = emails[0].run.campaign_id
    for email in emails:
        assert email.subject_variant == ab_variant(campaign_id=campaign_id, contact_id=email.contact_id, n=3)
        assert email.subject == email.subject_candidates[email.subject_variant]
    assert len({e.subject_variant for e in emails}) > 1  # six contacts do not all land in one arm


def test_picking_a_variant_in_review_is_a_recorded_edit(tenant, world, reviewer_api):
    email = written(run_campaign(tenant, subject_variants=3))[0]
    answer = reviewer_api.post(f"{API}/emails/{email.pk}/subject/", {"variant": 2}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["subject_variant"] == 2 and answer.json()["subject"] == email.subject_candidates[2]
    assert answer.json()["status"] == "draft"
    event = EmailEvent.dangerously_unscoped.get(email=email, kind=EventKind.SUBJECT_PICKED)
    assert event.detail == {"from": 0, "to": 2} and event.actor
    out_of_range = reviewer_api.post(f"{API}/emails/{email.pk}/subject/", {"variant": 3}, format="json")
    assert out_of_range.status_code == 400
    email.refresh_from_db()
    assert email.subject_variant == 2


def test_ab_emails_and_emails_without_variants_refuse_a_pick(tenant, world, reviewer_api):
    ab = written(run_campaign(tenant, "ab", subject_variants=2, subject_mode="ab"))[0]
    plain = written(run_campaign(tenant, "plain"))[0]
    for email in (ab, plain):
        answer = reviewer_api.post(f"{API}/emails/{email.pk}/subject/", {"variant": 0}, format="json")
        assert answer.status_code == 400 and answer.json()["error"]


def test_the_campaign_api_takes_the_settings_and_checks_them(tenant, owner_api, world):
    made = owner_api.post(
        f"{API}/campaigns/", {"name": "v", "subject_variants": 4, "subject_mode": "ab"}, format="json"
    )
    assert made.status_code == 201 and (made.json()["subject_variants"], made.json()["subject_mode"]) == (4, "ab")
    for bad in ({"subject_variants": 6}, {"subject_variants": 0}, {"subject_mode": "random"}):
        refused = owner_api.post(f"{API}/campaigns/", {"name": "w", **bad}, format="json")
        assert refused.status_code == 400 and set(bad) <= set(refused.json()["error"]["fields"])


def test_another_tenants_email_cannot_be_picked(tenant, world, outsider_api):
    email = written(run_campaign(tenant, subject_variants=2))[0]
    answer = outsider_api.post(f"{API}/emails/{email.pk}/subject/", {"variant": 1}, format="json")
    assert answer.status_code == 404
    email.refresh_from_db()
    assert email.subject_variant == 0
