"""The campaign page: Launch, Schedule (cron or every N, in a time zone), Pause/Resume, Preview for a contact of the
tenant, the runs with live progress and the schedule's ticks; buttons only for who may run campaigns, and another
tenant's campaign or contact is not there."""

import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from bench.desk_seed import seed
from campaigns.models import Campaign, CampaignRun, CampaignTick, GeneratedEmail, PromptTemplate
from campaigns.schedules import campaign_schedule, campaign_schedule_get
from datasets.models import Contact
from tenants.models import Role
from tenants.services import membership_add
from tests import test_admin_browser
from tests.conftest import make_catalog

page = test_admin_browser.page  # the headless Chromium fixture, shared


def login(tenant, role, username) -> Client:
    client = Client()
    client.force_login(membership_add(tenant=tenant, username=username, role=role).user)
    return client


@pytest.fixture
def campaign(tenant, catalog):
    return Campaign.dangerously_unscoped.create(tenant=tenant, name="Weekend picks", n_items=2)


def page_url(campaign):
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def do(campaign, what):
    return reverse("admin:campaigns_campaign_do", args=[campaign.pk, what])


def preview(campaign, contact=None):
    url = reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    return url if contact is None else f"{url}?contact={contact}"


def test_a_marketer_sees_the_desk_with_its_buttons_runs_and_ticks(staff_client, tenant, campaign):
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status="running", total=4)
    CampaignTick.dangerously_unscoped.create(tenant=tenant, campaign=campaign, outcome="skipped", run=run,
                                             detail="campaign 'Weekend picks' already has an active run")  # fmt: skip
    html = staff_client.get(page_url(campaign)).content.decode()
    for marker in ('id="launch-button"', 'id="preview-link"', 'id="schedule-form"', "Not scheduled",
                   f'data-run="{run.pk}" data-active="true"', "already has an active run", "everyone (subscribed)"):  # fmt: skip
        assert marker in html, marker
    assert reverse("admin:campaigns_campaignrun_progress", args=[run.pk]) in html


def test_reviewers_see_no_buttons_and_are_refused_every_one(tenant, campaign):
    reviewer = login(tenant, Role.REVIEWER, "rev")
    html = reviewer.get(page_url(campaign)).content.decode()
    assert 'id="launch-button"' not in html and 'id="schedule-form"' not in html and "marketer's" in html
    for what in ("launch", "schedule", "pause", "resume", "unschedule"):
        assert reviewer.post(do(campaign, what), {"kind": "interval", "every": 1, "period": "days"}).status_code == 403
    contact = Contact.dangerously_unscoped.filter(tenant=tenant).first()
    assert reviewer.get(preview(campaign, contact.pk)).status_code == 403
    assert not CampaignRun.dangerously_unscoped.exists() and not PeriodicTask.objects.exists()


def test_launch_from_the_page_queues_a_run_and_says_so(staff_client, tenant, campaign):
    answer = staff_client.post(do(campaign, "launch"), follow=True)
    run = CampaignRun.dangerously_unscoped.get(campaign=campaign)
    assert f"run #{run.pk} queued for {run.total} contacts" in answer.content.decode().lower()
    again = staff_client.post(do(campaign, "launch"), follow=True).content.decode().lower()
    assert "already has an active run" in again and CampaignRun.dangerously_unscoped.count() == 1


def test_schedule_pause_resume_and_remove_from_the_page(staff_client, tenant, campaign):
    said = staff_client.post(do(campaign, "schedule"), {"kind": "interval", "every": 2, "period": "hours"}, follow=True)
    assert "scheduled: every 2 hours" in said.content.decode().lower()
    bad = staff_client.post(do(campaign, "schedule"), {"kind": "cron", "cron": "0 9 * * 1", "timezone": "Mars/Base"},
                            follow=True).content.decode().lower()  # fmt: skip
    assert "schedule not saved" in bad and "timezone" in bad
    staff_client.post(do(campaign, "schedule"), {"kind": "cron", "cron": "30 8 * * 1-5", "timezone": "Europe/Paris"})
    assert str(campaign_schedule_get(campaign=campaign)) == "cron 30 8 * * 1-5 (Europe/Paris)"
    assert 'id="pause-button"' in staff_client.get(page_url(campaign)).content.decode()
    staff_client.post(do(campaign, "pause"))
    assert campaign_schedule_get(campaign=campaign).enabled is False
    assert 'id="resume-button"' in staff_client.get(page_url(campaign)).content.decode()
    staff_client.post(do(campaign, "resume"))
    assert campaign_schedule_get(campaign=campaign).enabled is True
    staff_client.post(do(campaign, "unschedule"))
    assert campaign_schedule_get(campaign=campaign) is None


@pytest.mark.parametrize(
    "body, says",
    [
        ({"kind": "interval", "every": 0, "period": "days"}, "every"),
        ({"kind": "interval", "every": 3, "period": "weeks"}, "period"),
        ({"kind": "interval", "period": "days"}, "an interval needs"),
        ({"kind": "cron", "cron": "61 * * * *"}, "minute"),
        ({"kind": "sometimes"}, "kind"),
    ],
)
def test_a_bad_schedule_is_a_clear_message_not_a_500(staff_client, campaign, body, says):
    answer = staff_client.post(do(campaign, "schedule"), body, follow=True)
    assert answer.status_code == 200
    assert "schedule not saved" in answer.content.decode().lower() and says in answer.content.decode().lower()
    assert not PeriodicTask.objects.exists()


def test_the_buttons_answer_only_post_and_known_names(staff_client, campaign):
    assert staff_client.get(do(campaign, "launch")).status_code == 405
    assert staff_client.post(do(campaign, "explode")).status_code == 404
    assert not CampaignRun.dangerously_unscoped.exists()
    assert staff_client.post(do(campaign, "pause"), follow=True).content.decode().lower().count("has no schedule") == 1


def test_the_preview_page_picks_a_contact_and_shows_the_sample(bedrock_settings, staff_client, tenant, campaign):
    picker = staff_client.get(preview(campaign)).content.decode()
    contacts = Contact.dangerously_unscoped.filter(tenant=tenant)
    assert picker.count("<option value=") == contacts.count() + 1 and "Sample email" not in picker
    contact = contacts.order_by("pk").first()
    html = staff_client.get(preview(campaign, contact.pk)).content.decode()
    subject = re.search(r'id="preview-subject">([^<]+)<', html)
    assert subject and "The picks" in html and "Why: #1 for this contact" in html and "The rendered prompt" in html
    assert contact.first_name in html and not CampaignRun.dangerously_unscoped.exists()
    assert not GeneratedEmail.dangerously_unscoped.exists()


def test_another_tenants_campaign_or_contact_is_a_404(bedrock_settings, staff_client, tenant, campaign, other_tenant):
    contacts, _ = make_catalog(other_tenant, n_contacts=1, prefix="g")
    theirs = Campaign.dangerously_unscoped.create(tenant=other_tenant, name="Theirs")
    campaign_schedule(campaign=theirs, every=1, period="days")
    assert staff_client.get(preview(campaign, contacts[0].pk)).status_code == 404
    assert staff_client.get(preview(campaign, "abc")).status_code == 404
    assert staff_client.get(preview(campaign, 999999)).status_code == 404
    assert staff_client.get(preview(theirs)).status_code == 404
    mine = Contact.dangerously_unscoped.filter(tenant=tenant).first()
    assert staff_client.get(preview(theirs, mine.pk)).status_code == 404
    for what in ("launch", "schedule", "pause", "resume", "unschedule"):
        assert staff_client.post(do(theirs, what)).status_code == 404
    assert staff_client.get(page_url(theirs)).status_code in (302, 404)
    assert PeriodicTask.objects.get().enabled is True and not CampaignRun.dangerously_unscoped.exists()


def test_a_campaign_is_created_from_a_template(staff_client, tenant, campaign):
    template = PromptTemplate.dangerously_unscoped.create(
        tenant=tenant, name="Cozy", body="Hi {{ contact.first_name }}"
    )
    listing = staff_client.get(reverse("admin:campaigns_prompttemplate_changelist")).content.decode()
    add = reverse("admin:campaigns_campaign_add") + f"?template={template.pk}&amp;tenant={tenant.pk}"
    assert add in listing
    form = staff_client.get(add.replace("&amp;", "&")).content.decode()
    assert re.search(rf'<option value="{template.pk}" selected[^>]*>Cozy</option>', form), form[
        form.find("id_template") :
    ][:400]
    body = {"tenant": tenant.pk, "name": "Cozy nights", "template": template.pk, "goal": "", "audience": '{"min_age": 21}',
            "n_items": 3, "review_required": "on", "subject_variants": 1, "subject_mode": "pick",
            "task": "marketing_email", "include_genres": "[]",
            "exclude_genres": "[]", "skip_emailed_days": 0, "promotion_share": 0}  # fmt: skip
    assert staff_client.post(reverse("admin:campaigns_campaign_add"), body).status_code == 302
    made = Campaign.dangerously_unscoped.get(name="Cozy nights")
    assert made.template == template and made.audience == {"kind": "filter", "min_age": 21}
    refused = staff_client.post(
        reverse("admin:campaigns_campaign_add"), {**body, "name": "x", "audience": '{"age": 3}'}
    )
    assert refused.status_code == 200 and "unknown audience keys age" in refused.content.decode()


def test_in_the_browser_a_marketer_previews_launches_and_watches_the_run(
    transactional_db, live_server, page, bedrock_settings, tenant, tmp_path
):
    """Headless Chromium: sign in, preview for a contact chosen in the picker, launch from the campaign page, and
    the run's row redraws itself (its own script, polling) as the run is written, without a reload."""
    from playwright.sync_api import expect

    from campaigns import runs
    from tests.test_progress import write

    membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123")
    contacts, _ = make_catalog(tenant, n_contacts=4)
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Browser picks", n_items=2)
    page.goto(live_server.url + page_url(campaign))
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-rita-123")
    page.click("input[type=submit]")
    page.click("#preview-link")
    page.select_option("#contact-picker select", str(contacts[1].pk))
    page.click("#contact-picker button")
    expect(page.locator("#preview-subject")).not_to_be_empty()
    expect(page.locator("#preview-body")).to_contain_text(contacts[1].first_name)
    expect(page.locator("#preview-picks .pick")).to_have_count(2)
    page.screenshot(path=str(tmp_path / "preview.png"), full_page=True)
    assert not CampaignRun.dangerously_unscoped.exists()

    page.click("text=Back to the campaign")
    page.click("#launch-button")  # no broker here: the run starts in the request, written by the emulated model
    expect(page.locator(".messagelist")).to_contain_text("queued for 4 contacts")
    run = CampaignRun.dangerously_unscoped.get(campaign=campaign)
    row = page.locator(f'#desk-runs tr[data-run="{run.pk}"]')
    expect(row).to_be_visible()
    # A second run, under way: its row follows it live, as the worker writes it.
    CampaignRun.dangerously_unscoped.filter(pk=run.pk).update(status="completed")
    live = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status="running", total=4,
                                                  started_at=timezone.now())  # fmt: skip
    page.reload()
    row = page.locator(f'#desk-runs tr[data-run="{live.pk}"]')
    expect(row).to_have_attribute("data-active", "true")
    page.evaluate("window.stillTheSamePage = true")
    write(live, contacts[:4])
    runs.run_refresh(run=live)
    expect(row.locator('[data-field="status"]')).to_have_text("completed", timeout=6000)
    expect(row.locator('[data-field="done_text"]')).to_have_text("4 / 4 (100.0%)")
    assert page.evaluate("window.stillTheSamePage") is True
    page.screenshot(path=str(tmp_path / "campaign.png"), full_page=True)


def test_each_run_on_the_campaign_page_links_to_its_drafts_on_the_desk(db):
    tenant, run = seed(n_drafts=4, slug="runs-desk", username="rita")
    client = Client()
    client.login(username="rita", password="pw-rita-123")
    GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk").first().approve(by="rita")
    html = client.get(page_url(run.campaign)).content.decode()
    desk = reverse("admin:campaigns_generatedemail_desk") + f"?run={run.pk}"
    assert f'<a class="button" href="{desk}">Review 3 drafts</a>' in html


def change_form(campaign, **changes) -> dict:
    """The campaign's admin change form as a browser posts it back, with `changes`."""
    data = {"tenant": campaign.tenant_id, "name": campaign.name, "template": "", "goal": campaign.goal,
            "audience": json.dumps(campaign.audience), "n_items": campaign.n_items, "task": campaign.task,
            "include_genres": "[]", "exclude_genres": "[]", "max_maturity": "",
            "skip_emailed_days": campaign.skip_emailed_days, "promotion_share": campaign.promotion_share,
            "review_required": "on", "subject_variants": campaign.subject_variants,
            "subject_mode": campaign.subject_mode, "_save": "Save"}  # fmt: skip
    return {**data, **changes}


def test_a_marketer_sets_subject_variants_and_their_mode_in_the_form(staff_client, campaign):
    """The campaign form has the subject-line variants: how many, and picked in review or split A/B; a number
    out of 1-5 or an unknown mode is an error on its field, and nothing changes."""
    form = staff_client.get(page_url(campaign)).content.decode()
    assert 'name="subject_variants"' in form and 'name="subject_mode"' in form
    saved = staff_client.post(page_url(campaign), change_form(campaign, subject_variants=3, subject_mode="ab"))
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert (campaign.subject_variants, campaign.subject_mode) == (3, "ab")
    for bad in ({"subject_variants": 9}, {"subject_mode": "coin"}):
        refused = staff_client.post(page_url(campaign), change_form(campaign, **bad))
        assert refused.status_code == 200 and set(refused.context["adminform"].form.errors) == set(bad)
    campaign.refresh_from_db()
    assert (campaign.subject_variants, campaign.subject_mode) == (3, "ab")


def test_the_change_form_refuses_run_shaping_changes_while_a_run_is_live(staff_client, tenant, campaign):
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status="running")
    refused = staff_client.post(page_url(campaign), change_form(campaign, n_items=5, goal="binge"))
    assert refused.status_code == 200  # the form again, with its error
    errors = refused.context["adminform"].form.non_field_errors()
    assert errors == [f"Run #{run.pk} of this campaign is running: goal, n_items may not change until it ends "
                      "(or is cancelled); the name may."]  # fmt: skip
    assert f"Run #{run.pk} of this campaign is running" in refused.content.decode()
    campaign.refresh_from_db()
    assert (campaign.n_items, campaign.goal) == (2, "")

    renamed = staff_client.post(page_url(campaign), change_form(campaign, name="Weekend picks II"))
    assert renamed.status_code == 302, renamed.context["adminform"].form.errors
    CampaignRun.dangerously_unscoped.filter(pk=run.pk).update(status="completed")
    changed = staff_client.post(page_url(campaign), change_form(campaign, name="Weekend picks II", n_items=5))
    assert changed.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.n_items) == ("Weekend picks II", 5)
