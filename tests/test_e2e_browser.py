"""The product end to end, in a real browser (headless Chromium through Playwright) against the live test server, a
real Celery worker and Redis, and Bedrock emulated over HTTP (real boto3): a marketer creates a campaign from a
template in the admin, previews it for a contact (no run), launches it, and reviews its 20 drafts on the desk with
the keyboard alone (approve, edit, reject by number and in words, regenerate with feedback, move back and forth);
the database holds every decision and its audit line, the dashboard counts them; a reviewer reviews but changes,
launches and sends nothing; another tenant's marketer finds none of it. Screenshots go to the test's folder (and to
/tmp/e2e-shots/ when E2E_SHOTS is set)."""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from campaigns.models import Campaign, CampaignRun, EmailEvent, EmailStatus, GeneratedEmail, PromptTemplate, RunStatus
from campaigns.prompting import default_source
from tenants.models import Role
from tenants.services import membership_add
from tests.conftest import make_catalog
from tests.test_admin_browser import page  # noqa: F401  (the Chromium page fixture)

pytestmark = pytest.mark.worker

N_CONTACTS = 20
WAIT_MS = 10_000  # a page answering, or the desk's poll (every 1.5 s) seeing a rewrite
RUN_WAIT_MS = 60_000  # the worker writing 20 drafts
PNG = b"\x89PNG\r\n\x1a\n"
DESK = "admin:campaigns_generatedemail_desk"


def sign_in(browser_page, url: str, username: str, password: str) -> None:
    """Open `url`; the admin asks who you are first, then shows it."""
    browser_page.goto(url)
    browser_page.fill("#id_username", username)
    browser_page.fill("#id_password", password)
    browser_page.click("input[type=submit]")
    expect(browser_page.locator("#id_username")).to_have_count(0)


def shoot(browser_page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    browser_page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG, f"{name} is not a PNG"
    if os.environ.get("E2E_SHOTS"):
        Path("/tmp/e2e-shots").mkdir(exist_ok=True)
        shutil.copy(path, Path("/tmp/e2e-shots") / name)
    return path


def csrf_post(browser_page, url: str, form: dict | None = None):
    """A POST from the signed-in page's session with its CSRF token, as a forged form would send it: what is refused
    is refused by the role, not by the CSRF check."""
    token = next(c["value"] for c in browser_page.context.cookies() if c["name"] == "csrftoken")
    return browser_page.request.post(url, form=form or {}, headers={"X-CSRFToken": token, "Referer": url},
                                     max_redirects=0)  # fmt: skip


@pytest.fixture
def story(tenant, other_tenant):
    """Tenant A (Acme) with 20 contacts, a catalog and a prompt template; its marketer and reviewer; tenant B
    (Globex) with a campaign of its own and its marketer."""
    contacts, _ = make_catalog(tenant, n_contacts=N_CONTACTS, n_items=12)
    template = PromptTemplate.dangerously_unscoped.create(
        tenant=tenant, name="Cozy weekend", body=default_source("default_email.j2")
    )
    membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123")
    membership_add(tenant=tenant, username="rev", role=Role.REVIEWER, password="pw-rev-12345")
    membership_add(tenant=other_tenant, username="otto", role=Role.MARKETER, password="pw-otto-123")
    make_catalog(other_tenant, n_contacts=2, n_items=4, prefix="g")
    Campaign.dangerously_unscoped.create(tenant=other_tenant, name="Globex horror night", n_items=2)
    return contacts, template


def test_a_campaign_from_template_to_reviewed_drafts_in_the_browser(
    start_worker,
    bedrock_settings,
    live_server,
    page,  # noqa: F811
    emulator,
    tenant,
    other_tenant,
    story,
    tmp_path,
):
    contacts, template = story
    worker = start_worker()  # boots while the marketer signs in
    base = live_server.url
    page.set_viewport_size({"width": 1400, "height": 900})

    # 1. The marketer creates a campaign from the template, in the admin's own forms.
    sign_in(page, base + reverse("admin:campaigns_prompttemplate_changelist"), "rita", "pw-rita-123")
    page.click("text=New campaign from this template")
    expect(page.locator("#id_template")).to_have_value(str(template.pk))
    page.fill("#id_name", "Cozy nights")
    page.fill("#id_n_items", "2")
    page.click("input[name=_continue]")  # Save and continue editing: the campaign's page
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    campaign = Campaign.dangerously_unscoped.get(tenant=tenant, name="Cozy nights")
    assert (campaign.template_id, campaign.n_items) == (template.pk, 2)
    expect(page.locator("#desk-launch")).to_contain_text("template “Cozy weekend”")

    # ... previews it for a contact she picks: the picks, the prompt and a sample, and no run.
    page.click("#preview-link")
    chosen = contacts[3]
    page.select_option("#contact-picker select", str(chosen.pk))
    page.click("#contact-picker button")
    expect(page.locator("#preview-picks .pick")).to_have_count(2)
    expect(page.locator("#preview-picks")).to_contain_text("Why: #1 for this contact")
    expect(page.locator("#preview-subject")).not_to_be_empty()
    expect(page.locator("#preview-body")).to_contain_text(f"{chosen.first_name},")
    prompt = page.locator("#preview-prompt")
    prompt.locator("summary").click()
    expect(prompt.locator("pre").last).to_contain_text(f"Name: {chosen.first_name}")
    for title in page.locator("#preview-picks .pick h3").all_inner_texts():
        expect(page.locator("#preview-body")).to_contain_text(re.sub(r"^\d+\. | \(\d{4}\)$", "", title))
    assert not CampaignRun.dangerously_unscoped.exists() and not GeneratedEmail.dangerously_unscoped.exists()

    # 2. She launches it; the worker writes a draft per contact with the emulated Bedrock model.
    page.click("text=Back to the campaign")
    page.click("#launch-button")
    expect(page.locator(".messagelist")).to_contain_text(f"queued for {N_CONTACTS} contacts")
    run = CampaignRun.dangerously_unscoped.get(campaign=campaign)
    row = page.locator(f'#desk-runs tr[data-run="{run.pk}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("completed", timeout=RUN_WAIT_MS)
    expect(row.locator('[data-field="done_text"]')).to_have_text(f"{N_CONTACTS} / {N_CONTACTS} (100.0%)")
    drafts = list(GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk"))
    assert len(drafts) == N_CONTACTS and all(d.status == EmailStatus.DRAFT for d in drafts), worker.output()
    ids = [d.pk for d in drafts]

    # 3. The desk, with the keyboard alone.
    page.goto(base + reverse(DESK) + f"?run={run.pk}")
    desk = page.locator("#desk")
    position = page.locator("#desk-position")
    checks = page.locator("#desk-checks")

    def showing(index: int) -> None:
        expect(desk).to_have_attribute("data-email-id", str(ids[index]))
        expect(desk).to_have_attribute("data-state", "ready")
        expect(page.locator("#desk-card [data-f=id]")).to_have_text(str(ids[index]))

    def press(key: str, then: int) -> None:
        page.keyboard.press(key)
        showing(then)

    showing(0)
    expect(position).to_have_text(f"Draft 1 of {N_CONTACTS} · 0 decided here")
    expect(page.locator("#desk-card [data-f=to]")).to_contain_text(drafts[0].contact.email)
    expect(page.locator("#desk-picks li")).to_have_count(2)
    press("a", 1)
    press("a", 2)
    press("j", 3)  # look ahead, then back
    press("k", 2)
    press("a", 3)

    # Edit: a new subject (Enter there must not leave the page), a P.S. at the end of the body, Ctrl+Enter approves.
    page.evaluate("window.stillTheSamePage = true")
    page.keyboard.press("e")
    edit = page.locator("#desk-edit")
    expect(edit).to_be_visible()
    expect(edit.locator("textarea[name=body]")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(edit.locator("input[name=subject]")).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("Your cozy weekend, Name3")
    page.keyboard.press("Enter")
    expect(edit).to_be_visible()  # not submitted as a GET of the desk with the email in its query string
    page.keyboard.press("Tab")
    expect(edit.locator("textarea[name=body]")).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nP.S. Popcorn is on us.")
    page.keyboard.press("Control+Enter")
    showing(4)
    assert page.evaluate("window.stillTheSamePage") is True
    expect(edit).to_be_hidden()

    # Reject by the number of one of the tenant's reasons, then one in words.
    reasons = tenant.reject_reasons
    page.keyboard.press("r")
    expect(page.locator("#desk-reasons li")).to_have_count(len(reasons))
    expect(page.locator("#desk-reasons li").nth(1)).to_have_text(f"2 {reasons[1]}")
    press("2", 5)
    page.keyboard.press("r")
    expect(page.locator("#desk-reject input[name=reason]")).to_be_focused()
    page.keyboard.type("Names a film we no longer stream")
    press("Enter", 6)

    # Regenerate with feedback: the next draft opens at once while the model rewrites this one.
    emulator.configure(latency_ms=500)  # long enough for the desk to be seen waiting
    page.keyboard.press("g")
    expect(page.locator("#desk-exclude input[type=checkbox]")).to_have_count(2)
    page.keyboard.type("Shorter, and warmer")
    press("Enter", 7)
    expect(position).to_contain_text("1 being rewritten")
    message = page.locator("#desk-message")
    expect(message).to_contain_text(f"Draft #{ids[6]} has been rewritten and is draft", timeout=WAIT_MS)
    emulator.configure(latency_ms=0)
    expect(position).not_to_contain_text("being rewritten")
    press("a", 8)
    press("b", 6)  # back to the rewritten draft
    expect(page.locator(".pill")).to_have_text("Draft")
    expect(page.locator(".desk-rewriting")).to_be_hidden()
    expect(checks).to_contain_text("rewritten with your feedback: “Shorter, and warmer”")
    page.keyboard.press("p")
    expect(page.locator("#desk-prompt")).to_contain_text("Shorter, and warmer")
    page.keyboard.press("p")
    press("a", 7)  # decided already: shown as it is now
    expect(page.locator(".pill")).to_have_text("Approved")
    press("k", 6)
    expect(page.locator(".pill")).to_have_text("Approved")
    expect(page.locator("#desk-events")).to_contain_text("Approved by rita")
    press("k", 5)
    expect(checks).to_contain_text("rejected: Names a film we no longer stream")
    press("k", 4)
    press("k", 3)
    expect(page.locator("[data-view=diff]")).to_be_visible()
    page.keyboard.press("d")
    expect(page.locator("#desk-diff ins")).to_contain_text(["Your cozy weekend,", "Popcorn is on us."])
    expect(position).to_contain_text("9 decided here")  # one was a rewrite
    expect(message).to_be_hidden()
    shoot(page, tmp_path, "desk.png")
    press("j", 4)  # not edited: the email again, not an empty "Changes" pane whose tab is gone
    expect(page.locator("[data-view=diff]")).to_be_hidden()
    expect(page.locator("#desk-diff")).to_be_hidden()
    expect(page.locator("#desk-html")).to_be_visible()
    page.keyboard.press("t")
    expect(page.locator("#desk-text")).to_contain_text(drafts[4].contact.first_name)
    expect(page.locator("#desk-html")).to_be_hidden()
    page.keyboard.press("t")
    expect(page.locator("#desk-html")).to_be_visible()

    # ... and the database holds each decision, the model's text beside the person's, and who did what.
    by_id = {e.pk: e for e in GeneratedEmail.dangerously_unscoped.filter(run=run)}
    status = {i: by_id[ids[i]].status for i in range(N_CONTACTS)}
    assert [status[i] for i in range(8)] == ["approved"] * 4 + ["rejected"] * 2 + ["approved"] * 2
    assert all(status[i] == "draft" for i in range(8, N_CONTACTS))
    edited, original = by_id[ids[3]], drafts[3]
    assert edited.edited and edited.original_body == original.body and edited.original_subject == original.subject
    assert edited.body == original.body.strip() + "\nP.S. Popcorn is on us."
    assert edited.subject == "Your cozy weekend, Name3"
    assert by_id[ids[4]].reject_reason == reasons[1]
    assert by_id[ids[5]].reject_reason == "Names a film we no longer stream"
    rewritten = by_id[ids[6]]
    assert rewritten.feedback == "Shorter, and warmer" and "Shorter, and warmer" in rewritten.prompt
    assert rewritten.reviewed_by == "rita" and rewritten.body != drafts[6].body
    events = [(e.email_id, e.kind, e.actor) for e in EmailEvent.dangerously_unscoped.filter(email__run=run)
              .exclude(kind="regenerated").order_by("pk")]  # fmt: skip
    assert events == [(ids[0], "approved", "rita"), (ids[1], "approved", "rita"), (ids[2], "approved", "rita"),
                      (ids[3], "edited", "rita"), (ids[4], "rejected", "rita"), (ids[5], "rejected", "rita"),
                      (ids[6], "regenerate_requested", "rita"), (ids[7], "approved", "rita"),
                      (ids[6], "approved", "rita")]  # fmt: skip
    regenerated = EmailEvent.dangerously_unscoped.get(email_id=ids[6], kind="regenerated")
    assert regenerated.actor == "" and regenerated.status == "draft"  # the product's own step

    # 4. The dashboard counts those decisions: 6 approved (one edited), 2 rejected.
    page.goto(base + "/admin/")
    kpi = lambda name: page.locator(f'[data-kpi="{name}"]')  # noqa: E731
    expect(kpi("total").locator(".kpi-value")).to_have_text(str(N_CONTACTS))
    expect(kpi("total")).to_contain_text(f"{N_CONTACTS - 8} waiting for review")
    expect(kpi("approval")).to_contain_text("6 of 8 decisions")
    expect(kpi("approval").locator(".kpi-value")).to_have_text("75%")
    expect(kpi("rejection")).to_contain_text("2 rejected")
    expect(kpi("rejection").locator(".kpi-value")).to_have_text("25%")
    expect(kpi("edits")).to_contain_text("1 edited before approval")
    expect(kpi("edits").locator(".kpi-value")).to_have_text("0.17")
    expect(page.locator("#chart-reasons")).to_contain_text("Names a film we no longer stream")
    shoot(page, tmp_path, "dashboard.png")

    # 5. A reviewer of the tenant reviews the rest on the desk...
    reviewer = page.context.browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    sign_in(reviewer, base + reverse(DESK) + f"?run={run.pk}", "rev", "pw-rev-12345")
    rdesk = reviewer.locator("#desk")
    held = []  # the decisions held back, as a slow server would: the desk goes on without waiting for them
    reviewer.route("**/desk/*/decide/", lambda route: held.append(route))
    for index in range(8, N_CONTACTS):
        expect(rdesk).to_have_attribute("data-email-id", str(ids[index]))
        reviewer.keyboard.press("a")
    expect(reviewer.locator("#desk-empty")).to_be_visible()
    expect(reviewer.locator("#desk-card")).to_be_hidden()
    expect(rdesk).to_have_attribute("data-email-id", "")
    left = N_CONTACTS - 8
    expect(reviewer.locator("#desk-position")).to_have_text(f"Draft {left} of {left} · {left} decided here")
    assert len(held) == left
    for route in held:
        route.continue_()
    reviewer.unroute("**/desk/*/decide/")
    reviewer.keyboard.press("k")  # the last one, redrawn once the server has answered its decision
    expect(rdesk).to_have_attribute("data-email-id", str(ids[-1]))
    expect(reviewer.locator(".pill")).to_have_text("Approved")
    expect(reviewer.locator("#desk-events")).to_contain_text("Approved by rev")
    expect(reviewer.locator("#desk-message")).to_be_hidden()  # no decision was refused
    left = GeneratedEmail.dangerously_unscoped.filter(pk__in=ids[8:])
    assert set(left.values_list("status", "reviewed_by")) == {("approved", "rev")}
    assert set(EmailEvent.dangerously_unscoped.filter(email_id__in=ids[8:]).values_list("kind", "actor")) == {
        ("approved", "rev")
    }

    # ... but changes no campaign, contact, item or template, and launches or sends nothing.
    campaign_url = base + reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    reviewer.goto(campaign_url)
    expect(reviewer.locator("#campaign-desk")).to_contain_text("Your role reviews drafts")
    expect(reviewer.locator("#launch-button")).to_have_count(0)
    expect(reviewer.locator("#preview-link")).to_have_count(0)
    expect(reviewer.locator("input[name=_save], input[name=_continue]")).to_have_count(0)
    expect(reviewer.locator("#id_name")).to_have_count(0)  # shown read-only, not as a field
    refused = csrf_post(reviewer, campaign_url, {"name": "Renamed by a reviewer", "n_items": "5"})
    assert refused.status == 403 and "CSRF" not in refused.text()
    for what in ("launch", "schedule"):
        do = base + reverse("admin:campaigns_campaign_do", args=[campaign.pk, what])
        answer = csrf_post(reviewer, do, {"kind": "interval", "every": "1", "period": "days"})
        assert answer.status == 403 and "CSRF" not in answer.text(), what
    preview = reviewer.goto(base + reverse("admin:campaigns_campaign_preview", args=[campaign.pk]))
    assert preview.status == 403
    for model in ("campaigns_campaign", "datasets_contact", "datasets_item", "campaigns_prompttemplate"):
        changelist = reviewer.goto(base + reverse(f"admin:{model}_changelist"))
        assert changelist.status == 200, model
        expect(reviewer.locator(".object-tools .addlink")).to_have_count(0)
        assert reviewer.goto(base + reverse(f"admin:{model}_add")).status == 403, model
    contact_url = base + reverse("admin:datasets_contact_change", args=[contacts[0].pk])
    reviewer.goto(contact_url)
    expect(reviewer.locator("input[name=_save]")).to_have_count(0)
    assert csrf_post(reviewer, contact_url, {"email": "x@example.com"}).status == 403
    template_url = base + reverse("admin:campaigns_prompttemplate_change", args=[template.pk])
    assert csrf_post(reviewer, template_url, {"name": "x", "body": "x"}).status == 403
    reviewer.goto(base + reverse("admin:campaigns_campaignrun_changelist"))
    actions = reviewer.locator("select[name=action] option").all_inner_texts()
    assert not any("Send" in a or "Cancel" in a or "Launch" in a for a in actions), actions
    runs_url = base + reverse("admin:campaigns_campaignrun_changelist")
    for action in ("send_approved", "cancel"):
        forged = csrf_post(reviewer, runs_url, {"action": action, "_selected_action": str(run.pk)})
        assert forged.status == 302, action
        reviewer.goto(runs_url)  # the refusal is said on the next page
        expect(reviewer.locator(".messagelist")).to_contain_text(f"Your role does not allow {action} here")
    emails_url = base + reverse("admin:campaigns_generatedemail_changelist")
    forged = csrf_post(reviewer, emails_url, {"action": "send_now", "_selected_action": str(ids[0])})
    assert forged.status == 302
    reviewer.goto(emails_url)
    expect(reviewer.locator(".messagelist")).to_contain_text("Your role does not allow send_now here")
    campaign.refresh_from_db()
    assert campaign.name == "Cozy nights" and campaign.n_items == 2
    assert CampaignRun.dangerously_unscoped.filter(campaign=campaign).count() == 1
    assert not GeneratedEmail.dangerously_unscoped.filter(run=run, status__in=["sending", "sent"]).exists()
    assert CampaignRun.dangerously_unscoped.get(pk=run.pk).status == RunStatus.COMPLETED

    # 6. Tenant B's marketer finds none of it: lists without A's rows, and A's pages by URL are not there.
    outsider = page.context.browser.new_context().new_page()
    sign_in(outsider, base + reverse("admin:campaigns_campaign_changelist"), "otto", "pw-otto-123")
    expect(outsider.locator("#result_list")).to_contain_text("Globex horror night")
    expect(outsider.locator("#result_list tbody tr")).to_have_count(1)
    for model in ("campaigns_campaignrun", "campaigns_generatedemail"):
        outsider.goto(base + reverse(f"admin:{model}_changelist"))
        expect(outsider.locator("#result_list")).to_have_count(0)
        expect(outsider.locator("#changelist .paginator")).to_have_text(re.compile(r"^\s*0 "))
    outsider.goto(base + reverse(DESK))
    expect(outsider.locator("#desk-empty")).to_be_visible()
    expect(outsider.locator("#desk-card")).to_be_hidden()
    expect(outsider.locator("#desk-filters")).not_to_contain_text("Cozy nights")
    assert outsider.goto(base + reverse(DESK) + f"?run={run.pk}").status == 404
    assert outsider.goto(base + reverse(DESK) + f"?campaign={campaign.pk}").status == 404
    for url in (reverse("admin:campaigns_generatedemail_change", args=[ids[0]]),
                reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
                reverse("admin:campaigns_campaignrun_change", args=[run.pk])):  # fmt: skip
        answer = outsider.goto(base + url)
        assert answer.status == 404, url
        assert "Cozy nights" not in outsider.content() and drafts[0].subject not in outsider.content()
    assert outsider.goto(base + reverse("admin:campaigns_campaign_preview", args=[campaign.pk])).status == 404
    decide = base + reverse("admin:campaigns_generatedemail_desk_decide", args=[ids[0]])
    assert csrf_post(outsider, decide).status == 404
    cards = outsider.request.get(base + reverse("admin:campaigns_generatedemail_desk_cards") + f"?ids={ids[0]}")
    assert cards.json() == {"cards": [], "missing": [ids[0]]}
    assert EmailEvent.dangerously_unscoped.filter(email_id=ids[0]).count() == 1  # rita's approval, nothing of B's
