"""The dashboard in a real browser (headless Chromium through Playwright): a marketer in two tenants signs in,
sees the charts and the figures of the seeded emails, switches tenant from the header and sees the other
tenant's. Screenshots go to the test's temporary folder."""

from playwright.sync_api import expect

from tenants.models import Role
from tenants.services import membership_add
from tests.test_admin_browser import page  # noqa: F401  (the Chromium page fixture)
from tests.test_dashboard import ACME, S, seed

GLOBEX = [("Horror week", 0, S.REJECTED, "bedrock/nova-pro", 500, 200, "0.01", False, "too scary", "", [1])] * 2 + [
    ("Horror week", 1, S.SENT, "bedrock/nova-pro", 500, 200, "0.01", False, "", "", [2])
]


def drawn_total(browser_page, chart_id: str) -> float:
    values = browser_page.locator(f"#{chart_id} rect.bar").evaluate_all(
        "bars => bars.map(b => Number(b.dataset.value))"
    )
    return sum(values)


def test_a_marketer_reads_the_dashboard_and_switches_tenant(
    transactional_db,
    live_server,
    page,  # noqa: F811
    tenant,
    other_tenant,
    tmp_path,
):
    seed(tenant, ACME)
    seed(other_tenant, GLOBEX, prefix="g")
    membership_add(tenant=tenant, username="mia", role=Role.MARKETER, password="pw-mia-123")
    membership_add(tenant=other_tenant, username="mia", role=Role.REVIEWER)
    page.set_viewport_size({"width": 1400, "height": 900})

    page.goto(live_server.url + "/admin/")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "pw-mia-123")
    page.click("input[type=submit]")
    kpi = lambda name: page.locator(f'[data-kpi="{name}"] .kpi-value')  # noqa: E731
    expect(page.locator(".dash-title")).to_have_text("All your tenants")
    expect(kpi("total")).to_have_text("15")

    page.select_option("#tenant-switcher-select", str(tenant.pk))  # submits the form
    expect(page.locator(".dash-title")).to_have_text(tenant.name)
    expect(kpi("total")).to_have_text("12")
    expect(kpi("approval")).to_have_text("57%")
    expect(kpi("rejection")).to_have_text("43%")
    expect(kpi("coverage")).to_have_text("75%")
    assert page.locator("#chart-status svg").is_visible()
    assert drawn_total(page, "chart-status") == 12  # every email of the range is in a bar
    assert drawn_total(page, "chart-reasons") == 3 and drawn_total(page, "chart-causes") == 4
    assert page.locator("#dash-empty").count() == 0
    page.screenshot(path=tmp_path / "dashboard-acme.png", full_page=True)

    page.select_option("#tenant-switcher-select", str(other_tenant.pk))
    expect(page.locator(".dash-title")).to_have_text(other_tenant.name)
    expect(kpi("total")).to_have_text("3")
    expect(kpi("rejection")).to_have_text("67%")
    expect(page.locator("#chart-reasons")).to_contain_text("too scary")
    assert drawn_total(page, "chart-status") == 3
    assert "Weekend" not in page.content()
    page.screenshot(path=tmp_path / "dashboard-globex.png", full_page=True)

    runs = page.locator(".dash-filters select[name=run]")
    runs.select_option(runs.locator("option").nth(1).get_attribute("value"))  # the tenant's only run
    page.click(".dash-filters button[type=submit]")
    expect(page.locator(".dash-sub")).to_contain_text("run #")
    expect(kpi("total")).to_have_text("3")
    assert (tmp_path / "dashboard-acme.png").stat().st_size > 10_000
