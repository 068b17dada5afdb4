"""The desk's bulk decision in real headless Chromium: Shift+A / Shift+R ask about every draft in view and say how
many, Enter confirms, and a set that changed before Enter is counted and asked about again, not decided blind."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import expect

from bench.desk_seed import seed
from campaigns.models import EmailEvent, GeneratedEmail
from tests.test_admin_browser import page  # noqa: F401 (the fixture)


@pytest.fixture
def desk(transactional_db, live_server, page):  # noqa: F811
    tenant, run = seed(n_drafts=6, slug="bulk", username="rita")
    page.goto(live_server.url + reverse("admin:campaigns_generatedemail_desk") + f"?run={run.pk}")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-rita-123")
    page.click("input[type=submit]")
    expect(page.locator("#desk")).to_have_attribute("data-state", "ready")
    return tenant, run


def statuses(run):
    return sorted(GeneratedEmail.dangerously_unscoped.filter(run=run).values_list("status", flat=True))


def test_shift_a_approves_every_draft_in_view_once_confirmed_and_recounts_a_changed_set(desk, page):  # noqa: F811
    tenant, run = desk
    question = page.locator("#desk-bulk .desk-bulk-question")
    page.keyboard.press("Shift+A")
    expect(question).to_have_text("Approve all 6 drafts in this view?")
    first = GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk").first()
    first.reject(by="someone else", reason="Too long")  # decided elsewhere before the marketer confirms
    page.keyboard.press("Enter")
    expect(question).to_have_text("The drafts in this view changed meanwhile. Approve all 5 drafts in this view?")
    assert statuses(run) == ["draft"] * 5 + ["rejected"]  # nothing decided on the stale count
    page.keyboard.press("Enter")
    expect(page.locator("#desk-bulk-done")).to_have_text("Approved 5 drafts.")
    expect(page.locator("#desk-empty")).to_be_visible()
    expect(page.locator("#desk-card")).to_be_hidden()  # not the last draft's card under "nothing left"
    assert statuses(run) == ["approved"] * 5 + ["rejected"]
    assert EmailEvent.dangerously_unscoped.filter(email__run=run, kind="approved", actor="rita").count() == 5


def test_shift_r_rejects_with_a_reason_by_its_number_and_esc_changes_nothing(desk, page):  # noqa: F811
    tenant, run = desk
    page.keyboard.press("Shift+R")
    expect(page.locator("#desk-bulk .desk-bulk-question")).to_contain_text("Reject all 6 drafts in this view?")
    page.keyboard.press("Escape")
    expect(page.locator("#desk-bulk")).to_be_hidden()
    page.keyboard.press("a")  # a plain key acts on the open draft again
    page.keyboard.press("Shift+R")
    expect(page.locator("#desk-bulk .desk-bulk-question")).to_contain_text("Reject all 5 drafts in this view?")
    expect(page.locator("#desk-bulk-reasons li").first).to_have_text(f"1 {tenant.reject_reasons[0]}")
    page.keyboard.press("1")
    expect(page.locator("#desk-bulk-done")).to_have_text(f"Rejected 5 drafts ({tenant.reject_reasons[0]}).")
    rows = GeneratedEmail.dangerously_unscoped.filter(run=run).values_list("status", "reject_reason")
    assert sorted(rows) == [("approved", "")] + [("rejected", tenant.reject_reasons[0])] * 5


def test_a_draft_gone_before_its_card_is_read_is_skipped_not_left_loading(transactional_db, live_server, page):  # noqa: F811
    tenant, run = seed(n_drafts=4, slug="gone", username="rita")
    first, second = GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk")[:2]

    def queue_then_delete(route):
        answer = route.fetch()  # the queue names the first draft; it is deleted before its card is asked for
        GeneratedEmail.dangerously_unscoped.filter(pk=first.pk).delete()
        route.fulfill(response=answer)

    page.route("**/desk/queue/**", queue_then_delete)
    page.goto(live_server.url + reverse("admin:campaigns_generatedemail_desk") + f"?run={run.pk}")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-rita-123")
    page.click("input[type=submit]")
    desk = page.locator("#desk")
    expect(desk).to_have_attribute("data-email-id", str(second.pk))
    expect(desk).to_have_attribute("data-state", "ready")
    expect(page.locator("#desk-position")).to_contain_text("Draft 1 of 3")


def test_s_sends_the_open_draft_to_the_reviewer_as_a_test_and_stays_on_it(desk, page, smtp_server):  # noqa: F811
    tenant, run = desk
    get_user_model().objects.filter(username="rita").update(email="rita@northwind.example")
    shown = page.locator("#desk").get_attribute("data-email-id")
    page.keyboard.press("s")
    expect(page.locator("#desk-message")).to_have_text(
        f"Test of draft #{shown} sent to rita@northwind.example; the draft is unchanged."
    )
    expect(page.locator("#desk")).to_have_attribute("data-email-id", shown)
    expect(page.locator("#desk-events")).to_contain_text("Test sent by rita")
    assert [received.rcpt_tos for received in smtp_server.received] == [["rita@northwind.example"]]
    assert statuses(run) == ["draft"] * 6


def test_v_and_a_click_pick_a_subject_variant_and_the_desk_stays_on_the_draft(transactional_db, live_server, page):  # noqa: F811
    """The variants show under the subject with the one in use pressed; v picks the next, a click any other; the
    draft stays open and a draft, and each pick is in its history."""
    tenant, run = seed(n_drafts=3, slug="subjects", username="rita")
    variants = ["Three picks for your weekend", "Your Friday films are here", "Popcorn ready? Three picks"]
    GeneratedEmail.dangerously_unscoped.filter(run=run).update(
        subject=variants[0], subject_candidates=variants, subject_variant=0
    )
    page.goto(live_server.url + reverse("admin:campaigns_generatedemail_desk") + f"?run={run.pk}")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-rita-123")
    page.click("input[type=submit]")
    expect(page.locator("#desk")).to_have_attribute("data-state", "ready")
    shown = page.locator("#desk").get_attribute("data-email-id")
    choices = page.locator("#desk-subjects .desk-subject-choice")
    expect(choices).to_have_count(3)
    expect(choices.nth(0)).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("v")
    expect(page.locator("#desk-message")).to_have_text(f"Subject B picked for draft #{shown}.")
    expect(page.locator(".desk-subject")).to_have_text(variants[1])
    expect(choices.nth(1)).to_have_attribute("aria-pressed", "true")
    choices.nth(2).click()
    expect(page.locator(".desk-subject")).to_have_text(variants[2])
    expect(page.locator("#desk")).to_have_attribute("data-email-id", shown)
    email = GeneratedEmail.dangerously_unscoped.get(pk=shown)
    assert (email.subject, email.subject_variant, email.status) == (variants[2], 2, "draft")
    picks = EmailEvent.dangerously_unscoped.filter(email=email, kind="subject_picked").order_by("pk")
    assert [e.detail for e in picks] == [{"from": 0, "to": 1}, {"from": 1, "to": 2}]
