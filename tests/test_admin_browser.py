"""The run's live progress panel in a real browser: headless Chromium (Debian's package, driven by Playwright)
against the live test server, so the page's own script, not a test double, is what has to redraw the figures."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from campaigns import runs
from campaigns.models import Campaign, CampaignRun, RunStatus
from tenants.models import Role
from tenants.services import membership_add
from tests.conftest import make_catalog
from tests.test_progress import write

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, and this network refuses it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
POLL_WAIT_MS = 5000  # the panel polls every 2 s


@pytest.fixture
def page(monkeypatch):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends "
                    "chromium), as .ci/run does; `playwright install` does not work here", pytrace=False)  # fmt: skip
    # Playwright's sync API keeps an event loop running in this thread. The test's own ORM calls are still
    # synchronous, but Django sees the loop: it must be told they are safe, and it gives them a database
    # connection of their own, which has to be closed here or the test database cannot be dropped.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
            connections.close_all()


@pytest.fixture
def running_run(tenant):
    """2 of 10 emails written, 100 s into the run; and a staff member of its tenant who can sign in."""
    membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123")
    contacts, _ = make_catalog(tenant, n_contacts=10)
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Live")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.RUNNING,
                                                  total=10, started_at=timezone.now() - timedelta(seconds=100))  # fmt: skip
    write(run, contacts[:2])
    return runs.run_refresh(run=run), contacts


def test_the_panel_follows_the_run_without_a_reload_and_stops_polling_when_it_ends(
    transactional_db, live_server, page, running_run
):
    run, contacts = running_run
    polls = []
    page.on("request", lambda request: polls.append(time.monotonic()) if "/progress/" in request.url else None)

    page.goto(live_server.url + reverse("admin:campaigns_campaignrun_change", args=[run.pk]))
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-rita-123")
    page.click("input[type=submit]")
    panel = page.locator("#run-progress")
    field = lambda name: panel.locator(f'[data-field="{name}"]')  # noqa: E731
    expect(field("done_text")).to_have_text("2 / 10 (20.0%)")
    expect(field("status")).to_have_text("running")
    expect(panel).to_have_attribute("data-active", "true")
    page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads the page

    write(run, contacts[2:5], failed=1)
    runs.run_refresh(run=run)
    expect(field("done_text")).to_have_text("5 / 10 (50.0%)", timeout=POLL_WAIT_MS)
    expect(field("failed")).to_have_text("1")
    expect(panel.locator("progress")).to_have_js_property("value", 5)
    expect(field("eta_text")).not_to_have_text("-")
    assert page.evaluate("window.stillTheSamePage") is True

    write(run, contacts[5:10])
    runs.run_refresh(run=run)
    expect(field("status")).to_have_text("completed", timeout=POLL_WAIT_MS)
    expect(field("done_text")).to_have_text("10 / 10 (100.0%)")
    expect(field("eta_text")).to_have_text("-")
    expect(panel).to_have_attribute("data-active", "false")
    expect(panel.locator("[data-note]")).to_contain_text("The run has completed")
    assert page.evaluate("window.stillTheSamePage") is True

    seen = len(polls)
    page.wait_for_timeout(3000)  # longer than one polling interval
    assert len(polls) == seen, "the panel kept polling after the run completed"
