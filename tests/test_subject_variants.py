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


# Each candidate passes the checks the body's own subject passed, or is dropped and says why -----------------------

PICKS = ["Movie Number 1", "Movie Number 2"]


def hand_drafts(tenant, subjects, n=5):
    """Finished drafts with these subjects (to the first contacts), each with a body the emulator answers with a
    candidate built on its subject ("Name0, <subject>"), in a run of a campaign asking for `n` candidates."""
    from awsemu.subjectlines import answer
    from campaigns.generation import Draft
    from campaigns.subjects import subject_prompt
    from datasets.models import Contact

    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="hand", n_items=2, subject_variants=n)
    run = services.campaign_launch(campaign=campaign, limit=len(subjects))
    drafts = []
    contacts = list(Contact.dangerously_unscoped.filter(tenant=tenant).order_by("pk"))[: len(subjects)]
    for contact, subject in zip(contacts, subjects, strict=True):
        for k in range(20):
            body = f"Hi {contact.first_name},\n\nTwo films for tonight: {' and '.join(PICKS)}.{' ' * k}\n\nThe team"
            on_subject = f"{contact.first_name}, {subject[:1].lower()}{subject[1:]}"
            if f"<variant>{on_subject}</variant>" in answer(subject_prompt(subject=subject, body=body, n=n)):
                break
        fields = {"status": EmailStatus.DRAFT, "subject": subject, "body": body, "checks": [], "cost_usd": 0}
        drafts.append(Draft(contact, fields, titles=list(PICKS)))
    return run, drafts


def test_candidates_that_fail_the_email_checks_are_dropped_with_the_reason(tenant, world):
    from campaigns.subjects import subjects_write
    from campaigns.validation import check_subject

    long = ("Two picks for you: " + ", ".join(PICKS) + " and a long, long evening" * 8)[:196]  # "Name0, " + it: 203
    subjects = [long,
                "Your picks, [Your name]",  # template residue
                "Movie Number 1, Movie Number 2 and Movie Number 7"]  # a title that was not recommended  # fmt: skip
    assert [len(s) <= 200 for s in subjects] == [True] * 3
    run, drafts = hand_drafts(tenant, subjects)
    subjects_write(drafts, run=run)
    why = {0: "subject must be 3-200 characters", 1: "contains template residue '[Your name]'",
           2: "names titles that were not recommended: movie number 7"}  # fmt: skip
    for i, draft in enumerate(drafts):
        kept = draft.fields["subject_candidates"]
        assert len(kept) == 4 and draft.fields["subject"] == kept[0], kept
        assert all(not check_subject(c, titles=PICKS, others=frozenset({"movie number 7"})) for c in kept)
        assert not any(subjects[i][1:20].lower() in c.lower() for c in kept)
        (dropped,) = [c["problem"] for c in draft.fields["checks"] if "dropped" in c["problem"]]
        assert dropped.startswith(f"subject variants: dropped '{draft.contact.first_name}, ") and why[i] in dropped


def test_with_the_guardrail_on_drafts_each_candidate_is_screened(tenant, world, emulator):
    from campaigns.generation import GUARDRAIL_TASK
    from campaigns.subjects import subjects_write
    from tenants.models import GuardrailUse

    emulator.guardrails.define("gr-acme", version="1", words=["watchlist", "Handpicked"])
    tenant.bedrock_guardrail_id, tenant.bedrock_guardrail_version = "gr-acme", "1"
    tenant.guardrail_use = GuardrailUse.DRAFTS
    tenant.save()
    run, (draft,) = hand_drafts(tenant, ["Two picks for tonight"])
    subjects_write([draft], run=run)
    kept = draft.fields["subject_candidates"]
    assert 3 <= len(kept) < 5 and not any("watchlist" in c or "Handpicked" in c for c in kept), kept
    assert any("blocked by the tenant's Bedrock guardrail" in c["problem"] for c in draft.fields["checks"])
    assert len(draft.screens) == 5 and {r.task for r in draft.screens} == {GUARDRAIL_TASK}
    assert len(emulator.requests.filter(operation="ApplyGuardrail", status=200)) == 5


def test_a_subject_call_the_guardrail_blocks_keeps_the_bodys_subject_and_says_so(tenant, world, emulator):
    from campaigns.subjects import subjects_write
    from tenants.models import GuardrailUse

    emulator.guardrails.define("gr-acme", version="1", words=["Name0"])
    tenant.bedrock_guardrail_id, tenant.bedrock_guardrail_version = "gr-acme", "1"
    tenant.guardrail_use = GuardrailUse.MODEL_CALLS
    tenant.save()
    run, (draft,) = hand_drafts(tenant, ["Two picks for tonight"])
    subjects_write([draft], run=run)
    assert draft.fields["subject"] == "Two picks for tonight" and "subject_candidates" not in draft.fields
    assert [c["problem"] for c in draft.fields["checks"]] == [
        "subject variants: blocked by the tenant's Bedrock guardrail"
    ]


def test_a_refused_subject_route_keeps_the_written_bodies_and_says_why(tenant, world):
    """A plan whose subject route names a model above its tier: the bodies, already written and paid for, were lost
    with the chunk (route_for raised before any subject call). They are kept with the body's subject, and each
    says why it has no variants."""
    from routing.catalog import invalidate
    from routing.models import ModelEntry, PlanRoute

    routes = PlanRoute.objects.filter(plan__slug=tenant.plan, backend="bedrock", task="subject")
    assert routes.update(model=ModelEntry.objects.get(key="bedrock/nova-pro"), fallback=None) == 1
    invalidate()
    emails = run_campaign(tenant, subject_variants=3)
    assert emails and all(e.status in (EmailStatus.DRAFT, EmailStatus.APPROVED) for e in emails)
    for email in emails:
        assert email.subject and email.body and email.subject_candidates == [] and email.subject_variant is None
        problems = [check["problem"] for check in email.checks]
        assert any(p.startswith("subject variants: no route: plan basic is on the small tier") for p in problems), (
            problems
        )
    assert not LLMCall.dangerously_unscoped.filter(tenant=tenant, task="subject").exists()
