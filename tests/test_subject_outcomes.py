"""The outcome of subject-line variants: opens and clicks recorded through SES's webhook (signed SNS, anymail's
parse) and the delivery-report API, once per event and suppressing nothing; the per-variant report (unique opens
and clicks per delivered or sent email) and its A/B verdict, which needs a minimum sample and a two-proportion
test; tenant-scoped in the API and on the campaign's admin page. Real PostgreSQL and the emulator throughout."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignRun,
    DeliveryReport,
    EmailEvent,
    EmailStatus,
    EventKind,
    GeneratedEmail,
    ReportKind,
)
from campaigns.reports import report_record
from campaigns.subject_test import Arm, arms_compare, subject_test_report
from datasets.models import Contact, Suppression
from tests import sns as aws
from tests.test_ses_webhooks import TRACKING, sent, signer  # noqa: F401 (fixtures)

API = "/api/v1"
REPORTS = f"{API}/delivery-reports/"


def seeded(tenant, arms, *, name="weekly", mode="ab", unsent=0, run=None, campaign=None):
    """A campaign (or another run of it) whose emails split over len(arms) subject variants, each arm
    (sent, delivered, opened, clicked) emails, plus `unsent` approved ones per arm. Returns (campaign, run, emails by
    arm)."""
    campaign = campaign or Campaign.dangerously_unscoped.create(
        tenant=tenant, name=name, subject_variants=len(arms), subject_mode=mode
    )
    run = run or CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status="completed")
    start = Contact.dangerously_unscoped.filter(tenant=tenant).count()
    by_arm = []
    for index, (n_sent, *_) in enumerate(arms):
        contacts = Contact.dangerously_unscoped.bulk_create(
            Contact(tenant=tenant, external_id=f"s{start}-{index}-{i}", email=f"r{start}-{index}-{i}@example.com",
                    first_name=f"R{i}")
            for i in range(n_sent + unsent)
        )  # fmt: skip
        start += len(contacts)
        candidates = [f"Variant {chr(65 + v)} for {{name}}" for v in range(len(arms))]
        by_arm.append(GeneratedEmail.dangerously_unscoped.bulk_create(
            GeneratedEmail(
                tenant=tenant, run=run, contact=c, body="Hi",
                subject=candidates[index].format(name=c.first_name if index else "you"),
                subject_candidates=[s.format(name=c.first_name) for s in candidates], subject_variant=index,
                status=EmailStatus.SENT if i < n_sent else EmailStatus.APPROVED,
                sent_at=timezone.now() - timedelta(hours=1) if i < n_sent else None,
                message_id=f"<{c.external_id}@acme.example>" if i < n_sent else "",
            )
            for i, c in enumerate(contacts)
        ))  # fmt: skip
    return campaign, run, by_arm


def outcomes_bulk(tenant, by_arm, arms):
    """Each arm's first `delivered` emails delivered, first `opened` opened, first `clicked` clicked: rows written in
    bulk (the report under test reads them; recording them one by one is tested through the real paths)."""
    rows = []
    for emails, (_, delivered, opened, clicked) in zip(by_arm, arms, strict=True):
        for kind, n in ((ReportKind.DELIVERED, delivered), (ReportKind.OPENED, opened), (ReportKind.CLICKED, clicked)):
            rows += [DeliveryReport(tenant=tenant, email=e, address=f"{e.pk}@example.com", kind=kind, provider="x",
                                    event_id=f"{kind}-{e.pk}") for e in emails[:n]]  # fmt: skip
    DeliveryReport.dangerously_unscoped.bulk_create(rows)


def report(email, kind, event_id, **extra):
    return report_record(provider="sendgrid", kind=kind, address=email.contact.email, tenant_id=email.tenant_id,
                         event_id=event_id, message_id=email.message_id, **extra)  # fmt: skip


def events(email, kind):
    return EmailEvent.objects.for_tenant(email.tenant_id).filter(email=email, kind=kind)


# Recording opens and clicks


def test_ses_opens_and_clicks_are_recorded_once_per_event_and_suppress_nothing(sent, signer, tenant):  # noqa: F811
    opened = signer.sign(aws.notification(aws.opened(sent.provider_message_id, sent.contact.email)))
    for _ in range(2):  # SNS delivers at least once: the second changes nothing
        assert aws.post(Client(), TRACKING, opened).status_code == 200
    again = signer.sign(aws.notification(aws.opened(sent.provider_message_id, sent.contact.email)), version="2")
    assert aws.post(Client(), TRACKING, again).status_code == 200  # a second open: its own event
    clicked = signer.sign(aws.notification(aws.clicked(sent.provider_message_id, sent.contact.email)))
    assert aws.post(Client(), TRACKING, clicked).status_code == 200

    rows = DeliveryReport.objects.for_tenant(tenant).order_by("pk")
    assert [(r.kind, r.email_id, r.provider) for r in rows] == [("opened", sent.pk, "ses")] * 2 + [
        ("clicked", sent.pk, "ses")]  # fmt: skip
    assert rows[0].event_id == f"{opened['MessageId']}:person1@example.com"
    assert rows[0].detail["userAgent"].startswith("Mozilla/5.0 (Macintosh)")
    assert rows[2].detail["link"] == "https://acme.example/films/9?utm_source=email"
    assert events(sent, EventKind.OPENED).count() == 2
    (click,) = events(sent, EventKind.CLICKED)
    assert click.detail["link"] == "https://acme.example/films/9?utm_source=email" and click.actor == "ses"
    assert click.status == EmailStatus.SENT
    assert not Suppression.dangerously_unscoped.exists()
    tenant.refresh_from_db()
    sent.refresh_from_db()
    assert tenant.sending_paused_at is None and sent.status == EmailStatus.SENT


def test_a_forged_open_is_refused_and_records_nothing(sent, signer, tenant):  # noqa: F811
    message = signer.sign(aws.notification(aws.opened(sent.provider_message_id, sent.contact.email)))
    forged = {**message, "Message": message["Message"].replace("Open", "Click")}
    reply = aws.post(Client(), TRACKING, forged)
    assert reply.status_code == 400 and b"signature does not match" in reply.content
    assert not DeliveryReport.dangerously_unscoped.exists()


def test_the_api_takes_opens_and_clicks_once_per_event_and_suppresses_nothing(owner_api, tenant):
    _, _, [[email]] = seeded(tenant, [(1, 0, 0, 0)])
    open_row = {"address": email.contact.email, "kind": "opened", "provider": "sendgrid", "event_id": "o-1",
                "message_id": email.message_id}  # fmt: skip
    one = owner_api.post(REPORTS, open_row, format="json")
    assert one.status_code == 201, one.content
    assert (one.json()["kind"], one.json()["email"]) == ("opened", email.pk)
    click_row = {**open_row, "kind": "clicked", "event_id": "c-1", "detail": {"link": "https://acme.example/x"}}
    many = owner_api.post(REPORTS, [open_row, click_row, {**open_row, "kind": "opened_twice"}], format="json")
    assert many.status_code == 207, many.content
    body = many.json()
    assert len(body["recorded"]) == 1 and body["already"] == [one.json()["id"]]
    assert [e["row"] for e in body["errors"]] == [2] and "kind" in body["errors"][0]["error"]
    assert events(email, EventKind.OPENED).count() == 1
    assert events(email, EventKind.CLICKED).get().detail["link"] == "https://acme.example/x"
    assert not Suppression.dangerously_unscoped.exists()
    listed = owner_api.get(f"{REPORTS}?kind=clicked").json()["results"]
    assert [row["kind"] for row in listed] == ["clicked"]


# The per-variant report


def test_the_report_counts_each_variants_sends_deliveries_and_unique_opens_and_clicks(owner_api, tenant, settings):
    settings.SUBJECT_TEST_MIN_PER_ARM = 5
    campaign, run, (a, b) = seeded(tenant, [(9, 0, 0, 0), (10, 0, 0, 0)], unsent=1)
    for email in a[:8] + b[:9]:
        report(email, ReportKind.DELIVERED, f"d-{email.pk}")
    for email in a[:5] + b[:3]:
        report(email, ReportKind.OPENED, f"o-{email.pk}")
    report(a[0], ReportKind.OPENED, "o-again")  # opened twice: one unique open
    for email in a[:2] + b[:1]:
        report(email, ReportKind.CLICKED, f"c-{email.pk}", detail={"link": "https://acme.example/f"})
    report(a[8], ReportKind.HARD_BOUNCE, "bounce-not-counted")  # other kinds count nothing here
    plain_contact = Contact.dangerously_unscoped.create(tenant=tenant, external_id="plain", email="p@example.com")
    GeneratedEmail.dangerously_unscoped.create(tenant=tenant, run=run, contact=plain_contact, subject="Own",
                                               status=EmailStatus.SENT)  # fmt: skip

    answer = owner_api.get(f"{API}/campaigns/{campaign.pk}/subject_test/")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["mode"], body["variants"], body["rate_base"], body["without_variants"]) == ("ab", 2, "delivered", 1)
    figures = [{k: arm[k] for k in ("variant", "label", "emails", "sent", "delivered", "opened", "clicked",
                                    "open_rate", "click_rate", "picked")} for arm in body["arms"]]  # fmt: skip
    assert figures == [
        {"variant": 0, "label": "A", "emails": 10, "sent": 9, "delivered": 8, "opened": 5, "clicked": 2,
         "open_rate": 0.625, "click_rate": 0.25, "picked": None},
        {"variant": 1, "label": "B", "emails": 11, "sent": 10, "delivered": 9, "opened": 3, "clicked": 1,
         "open_rate": 0.333333, "click_rate": 0.111111, "picked": None},
    ]  # fmt: skip
    assert body["arms"][0]["subjects"] == ["Variant A for you"] and body["arms"][0]["subject_count"] == 1
    assert body["arms"][1]["subject_count"] == 11 and len(body["arms"][1]["subjects"]) == 3
    assert body["opens"]["verdict"] == "not_enough_data"  # 8 opens in 17: under five expected in an arm
    assert owner_api.get(f"{API}/runs/{run.pk}/subject_test/").json()["arms"] == body["arms"]


def test_without_delivery_reports_the_rates_are_per_sent_email_and_a_run_counts_its_own(owner_api, tenant):
    campaign, _, (a, _b) = seeded(tenant, [(4, 0, 0, 0), (5, 0, 0, 0)])
    report(a[0], ReportKind.DELIVERED, "first-run-delivery")
    second = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign)
    _, _, (c, d) = seeded(tenant, [(2, 0, 0, 0), (4, 0, 0, 0)], campaign=campaign, run=second)
    report(c[0], ReportKind.OPENED, "o-c0")
    report(d[0], ReportKind.OPENED, "o-d0")
    report(d[1], ReportKind.CLICKED, "c-d1")
    body = owner_api.get(f"{API}/runs/{second.pk}/subject_test/").json()
    assert (body["run"], body["rate_base"]) == (second.pk, "sent")
    figures = [
        (arm["sent"], arm["opened"], arm["clicked"], arm["open_rate"], arm["click_rate"]) for arm in body["arms"]
    ]
    assert figures == [(2, 1, 0, 0.5, 0.0), (4, 1, 1, 0.25, 0.25)]
    whole = owner_api.get(f"{API}/campaigns/{campaign.pk}/subject_test/").json()
    assert whole["rate_base"] == "delivered" and [arm["sent"] for arm in whole["arms"]] == [6, 9]
    assert [arm["delivered"] for arm in whole["arms"]] == [1, 0]


def test_the_verdict_needs_the_minimum_sample_and_flips_with_it(owner_api, tenant, settings):
    settings.SUBJECT_TEST_MIN_PER_ARM = 100
    arms = [(60, 60, 18, 6), (60, 60, 12, 6)]  # 30 % against 20 % opens, on 60 each
    campaign, _, by_arm = seeded(tenant, arms)
    outcomes_bulk(tenant, by_arm, arms)
    small = owner_api.get(f"{API}/campaigns/{campaign.pk}/subject_test/").json()
    assert small["opens"]["verdict"] == "not_enough_data" and small["opens"]["best"] is None
    assert "needs 100 delivered emails, variant A has 60" in small["opens"]["detail"]

    settings.SUBJECT_TEST_MIN_PER_ARM = 50  # enough emails now, and the same rates are within chance at this size
    middle = owner_api.get(f"{API}/campaigns/{campaign.pk}/subject_test/").json()
    assert middle["opens"]["verdict"] == "no_winner" and middle["opens"]["best"] == 0
    assert 0.05 < middle["opens"]["p_value"] < 0.5
    assert middle["opens"]["detail"] == (
        "no clear winner yet: variant A leads with 30.0% opens per delivered email, but its lead over B (p = 0.21) "
        "could be chance"
    )

    arms = [(600, 600, 180, 30), (600, 600, 120, 30)]  # the same rates on ten times the emails
    campaign, _, by_arm = seeded(tenant, arms, name="bigger")
    outcomes_bulk(tenant, by_arm, arms)
    large = owner_api.get(f"{API}/campaigns/{campaign.pk}/subject_test/").json()
    assert large["opens"]["verdict"] == "winner" and large["opens"]["best"] == 0
    assert large["opens"]["p_value"] < 0.001 and large["opens"]["p_values"].keys() == {"1"}
    assert large["opens"]["detail"] == "variant A wins with 30.0% opens per delivered email, ahead of B (p = 6.3e-05)"
    assert large["clicks"]["verdict"] == "no_winner" and large["clicks"]["p_value"] == 1.0  # equal rates


def test_the_best_variant_must_beat_every_other_and_the_test_is_the_two_proportion_z_test(settings):
    settings.SUBJECT_TEST_MIN_PER_ARM = 100
    # 2 arms: the pooled two-proportion z-test's p-value, worked by hand: z = 3.19, p = 0.00142.
    two = arms_compare([Arm(0, 412, 1176), Arm(1, 338, 1170)], what="opens", base="delivered")
    assert (two["verdict"], two["best"]) == ("winner", 0) and two["p_value"] == pytest.approx(0.00142, abs=2e-5)
    # C beats A clearly, but not B: no winner (Holm-adjusted over both comparisons).
    three = arms_compare([Arm(0, 30, 100), Arm(1, 45, 100), Arm(2, 50, 100)], what="opens", base="delivered")
    assert (three["verdict"], three["best"]) == ("no_winner", 2)
    assert three["detail"] == (
        "no clear winner yet: variant C leads with 50.0% opens per delivered email, clearly ahead of A (p = 0.0078), "
        "but its lead over B (p = 0.48) could be chance"
    )
    assert three["p_values"]["0"] < 0.05 < three["p_values"]["1"]
    # 50 % against 35 % twice: each p = 0.032 alone, but two chances to find one: Holm makes both 0.064.
    twice = arms_compare([Arm(0, 35, 100), Arm(1, 35, 100), Arm(2, 50, 100)], what="opens", base="delivered")
    assert twice["verdict"] == "no_winner" and twice["p_values"] == {"0": pytest.approx(0.0638, abs=1e-3),
                                                                     "1": pytest.approx(0.0638, abs=1e-3)}  # fmt: skip
    clear = arms_compare([Arm(0, 30, 100), Arm(1, 31, 100), Arm(2, 50, 100)], what="opens", base="delivered")
    assert (clear["verdict"], clear["best"]) == ("winner", 2)
    rare = arms_compare([Arm(0, 4, 500), Arm(1, 0, 500)], what="clicks", base="delivered")  # 2 expected per arm
    assert rare["verdict"] == "not_enough_data" and "too few to compare" in rare["detail"]


def test_a_pick_campaign_counts_the_reviewers_picks_and_is_not_tested(owner_api, reviewer_api, tenant):
    campaign, run, _ = seeded(tenant, [(0, 0, 0, 0)] * 3, mode="pick")
    contacts = Contact.dangerously_unscoped.bulk_create(
        Contact(tenant=tenant, external_id=f"p{i}", email=f"p{i}@example.com", first_name=f"P{i}") for i in range(4)
    )
    drafts = GeneratedEmail.dangerously_unscoped.bulk_create(
        GeneratedEmail(tenant=tenant, run=run, contact=contact, subject="A", subject_candidates=["A", "B", "C"],
                       subject_variant=0)
        for contact in contacts
    )  # fmt: skip
    for draft, index in zip(drafts, (2, 2, 1), strict=False):
        assert (
            reviewer_api.post(f"{API}/emails/{draft.pk}/subject/", {"variant": index}, format="json").status_code == 200
        )
    assert reviewer_api.post(f"{API}/emails/{drafts[3].pk}/approve/").status_code == 200  # kept the default
    body = owner_api.get(f"{API}/campaigns/{campaign.pk}/subject_test/").json()
    assert body["mode"] == "pick"
    assert [(arm["variant"], arm["emails"], arm["picked"]) for arm in body["arms"]] == [(0, 1, 0), (1, 1, 1), (2, 2, 2)]
    assert body["opens"]["verdict"] == body["clicks"]["verdict"] == "not_tested"
    assert "reviewers picked" in body["opens"]["detail"]


def test_a_campaign_without_variants_has_nothing_to_test(owner_api, tenant):
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="plain")
    body = owner_api.get(f"{API}/campaigns/{campaign.pk}/subject_test/").json()
    assert body["arms"] == [] and body["opens"]["verdict"] == "not_tested"


# Tenants


def test_another_tenants_campaign_is_a_404_and_its_reports_never_count(owner_api, outsider_api, tenant, other_tenant,
                                                                      settings):  # fmt: skip
    settings.SUBJECT_TEST_MIN_PER_ARM = 2
    campaign, run, (a, b) = seeded(tenant, [(3, 0, 0, 0), (3, 0, 0, 0)])
    report(a[0], ReportKind.OPENED, "mine")
    for path in (f"campaigns/{campaign.pk}", f"runs/{run.pk}"):
        refused = outsider_api.get(f"{API}/{path}/subject_test/")
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    # The other tenant reports opens naming our emails' message ids: they find no email of theirs, count nowhere.
    for email in a + b:
        row = {"address": email.contact.email, "kind": "opened", "provider": "x", "message_id": email.message_id}
        assert outsider_api.post(REPORTS, row, format="json").json()["email"] is None
    theirs, _, (x, _y) = seeded(other_tenant, [(3, 0, 0, 0), (3, 0, 0, 0)], name="weekly")
    report(x[0], ReportKind.OPENED, "mine")  # their own open, with the same event id as ours
    mine = subject_test_report(campaign=campaign)
    assert [arm["opened"] for arm in mine["arms"]] == [1, 0]
    assert [arm["opened"] for arm in subject_test_report(campaign=theirs)["arms"]] == [1, 0]
    assert owner_api.get(f"{API}/campaigns/{theirs.pk}/subject_test/").status_code == 404


# The campaign page


def test_the_campaign_page_shows_the_ab_table_and_verdicts(staff_client, tenant, settings):
    settings.SUBJECT_TEST_MIN_PER_ARM = 100
    arms = [(600, 600, 180, 30), (600, 580, 120, 29)]
    campaign, _, by_arm = seeded(tenant, arms)
    outcomes_bulk(tenant, by_arm, arms)
    page = staff_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    section = html[html.index('id="desk-subjects"') : html.index('id="desk-ticks"')]
    assert "Subject lines: A/B test" in section and "Variant A for you" in section
    assert "30.0%" in section and "20.7%" in section and "5.0%" in section  # 120/580, 30/600
    assert section.count("winner</span>") == 1  # opens have a winner, clicks do not
    assert "variant A wins with 30.0% opens per delivered email, ahead of B" in section
    assert "no clear winner yet" in section and "Rates per delivered email" in section


def test_the_campaign_page_shows_the_picks_of_a_pick_campaign_and_nothing_without_variants(staff_client, tenant):
    campaign, _, _ = seeded(tenant, [(2, 0, 0, 0), (1, 0, 0, 0)], mode="pick")
    html = staff_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "Subject lines: reviewers' picks" in html and "picked by a reviewer" in html
    assert "not compared as an A/B test" in html
    plain = Campaign.dangerously_unscoped.create(tenant=tenant, name="plain")
    html = staff_client.get(f"/admin/campaigns/campaign/{plain.pk}/change/").content.decode()
    assert 'id="desk-subjects"' not in html


def test_the_run_page_shows_its_own_runs_subject_test(staff_client, tenant):
    """A run's page shows the subject report of that run alone (the campaign page adds up every run)."""
    campaign, first, _ = seeded(tenant, [(4, 4, 0, 0), (4, 4, 0, 0)])
    _, second, _ = seeded(tenant, [(2, 2, 0, 0), (3, 3, 0, 0)], campaign=campaign)
    html = staff_client.get(f"/admin/campaigns/campaignrun/{second.pk}/change/").content.decode()
    section = html[html.index('id="desk-subjects"') :]
    assert "Subject lines: A/B test" in section and "This run's emails" in section
    rows = section.split('data-variant="')[1:]
    assert [row.split("<td>")[3].split("</td>")[0] for row in rows] == ["2", "3"]  # emails per variant: run 2's
    whole = staff_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    rows = whole[whole.index('id="desk-subjects"') :].split('data-variant="')[1:3]
    assert [row.split("<td>")[3].split("</td>")[0] for row in rows] == ["6", "7"]
    plain = Campaign.dangerously_unscoped.create(tenant=tenant, name="plain")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=plain, status="completed")
    assert (
        'id="desk-subjects"' not in staff_client.get(f"/admin/campaigns/campaignrun/{run.pk}/change/").content.decode()
    )
    assert first.pk != second.pk
