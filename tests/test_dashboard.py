"""The dashboard at /admin/: figures computed from seeded emails, drawn as SVG, for the chosen tenant only, with
its filters (run, campaign, days), a friendly empty state, and clear errors for bad filters."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import charts
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from routing.models import LLMCall
from tenants.models import Role
from tenants.services import membership_add
from tests.conftest import make_catalog

S = EmailStatus
DASHBOARD_QUERIES = 22  # a whole render with figures, for one marketer (session, user and roles included)
# One email per row: (campaign, day offset back from today, status, model, input, output tokens, cost, edited,
# reject_reason, failure_reason, picks by catalog index).
ACME = [
    ("Weekend", 0, S.DRAFT, "bedrock/nova-lite", 100, 50, "0.001", False, "", "", [0, 1]),
    ("Weekend", 0, S.APPROVED, "bedrock/nova-lite", 100, 50, "0.001", True, "", "", [1, 2]),
    ("Weekend", 1, S.SENT, "bedrock/nova-lite", 120, 60, "0.002", False, "", "", [2, 3]),
    ("Weekend", 1, S.SENT, "bedrock/nova-lite", 120, 60, "0.002", True, "", "", [0, 3]),
    ("Weekend", 2, S.REJECTED, "bedrock/nova-lite", 90, 40, "0.001", False, "too pushy", "", [4]),
    ("Weekend", 2, S.REJECTED, "bedrock/nova-lite", 90, 40, "0.001", False, "too pushy", "", [5]),
    ("Weekend", 2, S.REJECTED, "bedrock/nova-lite", 90, 40, "0.001", False, "wrong name", "", [5]),
    ("Launches", 3, S.FAILED, "bedrock/claude-haiku", 300, 0, "0.004", False, "",
     "does not mention: Movie Number 6; body must be 200-2000 characters, was 12", [6]),
    ("Launches", 3, S.FAILED, "bedrock/claude-haiku", 300, 0, "0.004", False, "",
     "does not mention: Movie Number 7", [7]),
    ("Launches", 3, S.FAILED, "bedrock/claude-haiku", 0, 0, "0", False, "",
     "blocked by the tenant's Bedrock guardrail (violence)", []),
    ("Launches", 4, S.FAILED, "bedrock/claude-haiku", 0, 0, "0", False, "", "no recommendations for this contact", []),
    ("Launches", 4, S.SEND_FAILED, "bedrock/claude-haiku", 200, 80, "0.003", False, "", "", [8]),
    ("Launches", 40, S.SENT, "bedrock/claude-haiku", 200, 80, "0.003", False, "", "", [9]),  # outside 30 days
]  # fmt: skip


def seed(tenant, rows, *, prefix=""):
    """The rows' emails in two runs of two campaigns, each dated its day; a catalog of 12 items."""
    contacts, items = make_catalog(tenant, n_contacts=len(rows), n_items=12, prefix=prefix)
    runs = {}
    for name in dict.fromkeys(row[0] for row in rows):
        campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name=f"{prefix}{name}")
        runs[name] = CampaignRun.dangerously_unscoped.create(
            tenant=tenant, campaign=campaign, status=RunStatus.COMPLETED
        )
    now = timezone.now()
    for contact, (name, days, status, model, tin, tout, cost, edited, reject, failure, picks) in zip(
        contacts, rows, strict=True
    ):
        email = GeneratedEmail.dangerously_unscoped.create(
            tenant=tenant, run=runs[name], contact=contact, status=status, model_key=model, input_tokens=tin,
            output_tokens=tout, cost_usd=Decimal(cost), edited=edited, reject_reason=reject, failure_reason=failure,
            items=[{"id": items[i].external_id, "title": items[i].title} for i in picks],
        )  # fmt: skip
        GeneratedEmail.dangerously_unscoped.filter(pk=email.pk).update(created_at=now - timedelta(days=days))
    CampaignRun.dangerously_unscoped.filter(pk__in=[r.pk for r in runs.values()]).update(created_at=now - timedelta(2))
    return runs


@pytest.fixture
def seeded(tenant, other_tenant):
    """Acme's emails as in ACME; Globex's, three sent ones with a cost of their own."""
    runs = seed(tenant, ACME)
    theirs = [("Globex only", 0, S.SENT, "bedrock/nova-pro", 1000, 500, "0.5", False, "", "", [0])] * 3
    their_runs = seed(other_tenant, theirs, prefix="g")
    return runs, their_runs


def login(tenant, role=Role.MARKETER, username="rita") -> Client:
    client = Client()
    client.force_login(membership_add(tenant=tenant, username=username, role=role).user)
    return client


def kpi(html: str, name: str) -> str:
    found = re.search(rf'data-kpi="{name}">.*?class="kpi-value">(.*?)</span><span class="kpi-note">(.*?)</span>', html)
    assert found, name
    return f"{found.group(1)} | {re.sub('<[^>]+>', '', found.group(2))}"


def chart(html: str, chart_id: str) -> str:
    found = re.search(rf'id="{chart_id}">(.*?)</figure>', html, re.S)
    assert found, chart_id
    return found.group(1)


def bar_values(svg: str, attribute="data-label") -> dict[str, float]:
    return {label: float(value) for label, value in re.findall(rf'{attribute}="([^"]*)" data-value="([^"]*)"', svg)}


def test_the_figures_of_the_last_30_days(seeded):
    page = login(seeded[0]["Weekend"].tenant).get(reverse("admin:index"))
    assert page.status_code == 200
    html = page.content.decode()
    assert kpi(html, "total") == "12 | 1 waiting for review"  # the 13th is 40 days old
    # Decisions: approved 1 + sent 2 + send failed 1 = 4 approved; 3 rejected.
    assert kpi(html, "approval") == "57% | 4 of 7 decisions"
    assert kpi(html, "rejection") == "43% | 3 rejected"
    assert kpi(html, "edits") == "0.50 | 2 edited before approval"
    assert kpi(html, "sent") == "2 | 4 approved in all"
    assert kpi(html, "failed") == "4 | 33.3% of the emails"
    assert kpi(html, "cost") == "$0.02 | $0.00167 per email"  # 0.020 / 12
    assert kpi(html, "tokens") == "1,930 | 1,510 in · 420 out"
    assert kpi(html, "coverage") == "75% | 9 of 12 titles picked"  # items 0-8; 9 only 40 days ago
    assert "Globex" not in html and '<h1 class="dash-title">Acme Video</h1>' in html


def test_the_charts_draw_the_figures(seeded):
    html = login(seeded[0]["Weekend"].tenant).get(reverse("admin:index")).content.decode()
    status = chart(html, "chart-status")
    assert "<svg" in status and "Emails written per day, by status" in status
    drawn = re.findall(r'data-series="([^"]*)" data-value="([^"]*)"', status)
    totals = {}
    for series, value in drawn:
        totals[series] = totals.get(series, 0) + float(value)
    assert totals == {"Waiting for review": 1, "Approved": 1, "Sent": 2, "Rejected": 3, "Failed to write": 4,
                      "Not delivered": 1}  # fmt: skip
    assert len(re.findall(r"<text[^>]*>[A-Z][a-z]{2} \d{1,2}</text>", status)) >= 3  # dates under the axis
    assert bar_values(chart(html, "chart-reasons")) == {"too pushy": 2, "wrong name": 1}
    assert bar_values(chart(html, "chart-causes")) == {
        "Did not name every pick": 2, "Blocked by the guardrail": 1, "No recommendations": 1,
    }  # fmt: skip
    assert bar_values(chart(html, "chart-tokens")) == {"bedrock/nova-lite": 1050, "bedrock/claude-haiku": 880}
    per_email = bar_values(chart(html, "chart-campaigns"))
    assert per_email == pytest.approx({"Weekend": 0.009 / 7, "Launches": 0.011 / 5})
    cost = chart(html, "chart-cost")
    days = re.findall(r'data-series="([^"]*)" data-value="([^"]*)"', cost)
    assert sum(float(v) for s, v in days if s == "bedrock/claude-haiku") == pytest.approx(0.011)
    assert sum(float(v) for s, v in days if s == "bedrock/nova-lite") == pytest.approx(0.009)


def test_filter_by_run_campaign_and_days(seeded):
    runs, their_runs = seeded
    client = login(runs["Weekend"].tenant)
    html = client.get(reverse("admin:index"), {"run": runs["Weekend"].pk}).content.decode()
    assert kpi(html, "total") == "7 | 1 waiting for review" and "run #" in html
    waiting = re.search(r'<a href="([^"]*)">1 waiting for review</a>', html)[1].replace("&amp;", "&")
    # The link opens the review desk on that run, whose queue is that one draft.
    assert waiting.startswith(reverse("admin:campaigns_generatedemail_desk")) and client.get(waiting).status_code == 200
    queue = reverse("admin:campaigns_generatedemail_desk_queue") + "?" + waiting.split("?", 1)[1]
    assert len(client.get(queue).json()["ids"]) == 1
    html = client.get(reverse("admin:index"), {"campaign": runs["Launches"].campaign_id, "days": 90}).content.decode()
    assert kpi(html, "total") == "6 | 0 waiting for review" and kpi(html, "sent") == "1 | 2 approved in all"
    html = client.get(reverse("admin:index"), {"days": 1}).content.decode()
    assert kpi(html, "total") == "2 | 1 waiting for review"
    # Another tenant's run or campaign is not there.
    assert client.get(reverse("admin:index"), {"run": their_runs["Globex only"].pk}).status_code == 404
    assert client.get(reverse("admin:index"), {"campaign": their_runs["Globex only"].campaign_id}).status_code == 404
    assert client.get(reverse("admin:index"), {"run": 99999999}).status_code == 404


@pytest.mark.parametrize(
    "query, said",
    [({"days": "abc"}, "days must be a whole number"), ({"days": "0"}, "days must be from 1 to 365"),
     ({"days": "100000"}, "days must be from 1 to 365"), ({"run": "1; drop"}, "run must be a whole number"),
     ({"campaign": "-3"}, "campaign must be a whole number")],
)  # fmt: skip
def test_a_bad_filter_is_a_clear_400(seeded, query, said):
    answer = login(seeded[0]["Weekend"].tenant).get(reverse("admin:index"), query)
    assert answer.status_code == 400 and said in answer.content.decode()
    assert 'class="errornote dash-problem"' in answer.content.decode()  # above the default view, not a bare page


@pytest.mark.parametrize("role", [Role.OWNER, Role.MARKETER, Role.REVIEWER])
def test_every_role_reads_the_dashboard(seeded, role):
    html = login(seeded[0]["Weekend"].tenant, role).get(reverse("admin:index")).content.decode()
    assert kpi(html, "total") == "12 | 1 waiting for review"


def test_an_empty_tenant_gets_a_friendly_empty_state(tenant):
    html = login(tenant).get(reverse("admin:index")).content.decode()
    assert 'id="dash-empty"' in html and "Nothing written yet" in html and '<svg class="chart"' not in html
    assert 'class="app-campaigns' in html  # the app list is still there, below


def test_the_dashboard_follows_the_switcher(seeded, tenant, other_tenant):
    client = login(tenant, username="mia")
    membership_add(tenant=other_tenant, username="mia", role=Role.REVIEWER)
    html = client.get(reverse("admin:index")).content.decode()
    assert kpi(html, "total") == "15 | 1 waiting for review" and "All your tenants" in html
    html = client.get(reverse("admin:index"), {"run": seeded[1]["Globex only"].pk}).content.decode()
    assert '<h1 class="dash-title">Globex Films</h1>' in html and kpi(html, "total").startswith("3 |")
    client.post(reverse("tenant_switch"), {"tenant": other_tenant.pk})
    html = client.get(reverse("admin:index")).content.decode()
    assert kpi(html, "total") == "3 | 0 waiting for review" and kpi(html, "cost") == "$1.50 | $0.50000 per email"
    assert '<h1 class="dash-title">Globex Films</h1>' in html
    assert "Weekend" not in html


def test_a_superuser_sees_every_tenant_or_the_chosen_one(seeded, tenant):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    assert kpi(client.get(reverse("admin:index")).content.decode(), "total") == "15 | 1 waiting for review"
    client.post(reverse("tenant_switch"), {"tenant": tenant.pk})
    assert kpi(client.get(reverse("admin:index")).content.decode(), "total") == "12 | 1 waiting for review"


def test_the_figures_are_aggregated_in_the_database(tenant):
    """The number of queries does not grow with the emails: no loop over rows."""
    rows = [("Weekend", i % 5, S.SENT if i % 2 else S.REJECTED, "m", 10, 5, "0.001", False, f"r{i % 3}", "", [i % 12])
            for i in range(60)]  # fmt: skip
    seed(tenant, rows[:6])
    client = login(tenant)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("admin:index")).status_code == 200
    seed(tenant, rows[6:], prefix="x")
    with CaptureQueriesContext(connection) as many:
        html = client.get(reverse("admin:index")).content.decode()
    assert kpi(html, "total").startswith("60 |")
    dashboard = [q["sql"] for q in many.captured_queries if "campaigns_generatedemail" in q["sql"]]
    assert len(many) == len(few) and len(dashboard) <= 12, dashboard


def spend_rows(html: str) -> dict[str, list[str]]:
    table = re.search(r'id="table-tasks">(.*?)</div>', html, re.S)
    assert table, "no spend-by-task table"
    rows = re.findall(r"<tr><td[^>]*>(.*?)</td>(.*?)</tr>", table.group(1), re.S)
    return {name: re.findall(r'<td class="num">(.*?)</td>', cells) for name, cells in rows}


def test_model_spend_by_task_counts_every_call_of_the_selection_only(seeded, other_tenant):
    """The email rows carry their own cost only; the calls around them (screening, routing, the judge) are paid
    too, and the dashboard's table by task sums the usage records, scoped like the rest of the page."""
    runs, their_runs = seeded
    weekend, launches = runs["Weekend"], runs["Launches"]
    tenant = weekend.tenant

    def call(run, task, cost, *, tenant=tenant, ok=True, days=0, tokens=(100, 20)):
        record = LLMCall.dangerously_unscoped.create(
            tenant=tenant, task=task, model_key="bedrock/nova-lite", provider="bedrock", model_id="m",
            route_reason="test", input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=Decimal(cost), ok=ok,
            campaign_id=run.campaign_id, run_id=run.pk,
        )  # fmt: skip
        LLMCall.dangerously_unscoped.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(days=days))

    call(weekend, "marketing_email", "0.0100")
    call(weekend, "marketing_email", "0.0200", ok=False)
    call(weekend, "guardrail_screen", "0.0005")
    call(weekend, "judge", "0.0030")
    call(weekend, "route_classify", "0.0001", tokens=(7, 0))
    call(launches, "judge", "0.0040")
    call(weekend, "judge", "0.9000", days=45)  # outside the 30 days
    call(their_runs["Globex only"], "judge", "5.0000", tenant=other_tenant)

    client = login(tenant)
    rows = spend_rows(client.get(reverse("admin:index")).content.decode())
    assert list(rows) == ["Email body", "Draft judge", "Guardrail screening", "Dynamic routing (labels, embeddings)"]
    assert rows["Email body"] == ["2", "1", "200", "40", "$0.0300"]
    assert rows["Draft judge"] == ["2", "0", "200", "40", "$0.0070"]
    assert rows["Dynamic routing (labels, embeddings)"] == ["1", "0", "7", "0", "$0.0001"]
    html = client.get(reverse("admin:index"), {"run": launches.pk, "days": 30}).content.decode()
    assert spend_rows(html) == {"Draft judge": ["1", "0", "100", "20", "$0.0040"]} and "$0.0040 in all" in html
    html = client.get(reverse("admin:index"), {"campaign": weekend.campaign_id, "days": 90}).content.decode()
    assert spend_rows(html)["Draft judge"][-1] == "$0.9030"
    assert "$5.0000" not in client.get(reverse("admin:index"), {"days": 365}).content.decode()


def test_the_spend_by_task_names_email_tasks_without_a_query_of_its_own(seeded, django_assert_max_num_queries):
    """A call's task is "Email body" when it is one of the tenant's campaigns' tasks: found inside the table's own
    aggregate, not by reading every campaign's task on each render."""
    runs, their_runs = seeded
    weekend = runs["Weekend"]
    Campaign.dangerously_unscoped.filter(pk=weekend.campaign_id).update(task="newsletter")
    Campaign.dangerously_unscoped.filter(pk=their_runs["Globex only"].campaign_id).update(task="globex_letters")
    for task in ("newsletter", "judge", "globex_letters"):
        LLMCall.dangerously_unscoped.create(
            tenant=weekend.tenant, task=task, model_key="bedrock/nova-lite", provider="bedrock", model_id="m",
            route_reason="test", input_tokens=10, output_tokens=5, cost_usd=Decimal("0.001"),
            campaign_id=weekend.campaign_id, run_id=weekend.pk,
        )  # fmt: skip
    client = login(weekend.tenant)
    client.get(reverse("admin:index"))  # the session's first reads
    with django_assert_max_num_queries(DASHBOARD_QUERIES):
        html = client.get(reverse("admin:index")).content.decode()
    # Another tenant's campaign task is no email body here.
    assert sorted(spend_rows(html)) == ["Draft judge", "Email body", "globex_letters"]


def test_anonymous_visitors_are_sent_to_the_login(client):
    answer = client.get(reverse("admin:index"))
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]


def test_nice_axis_tops():
    tops = [charts.nice_max(v) for v in (0, 0.7, 1, 3, 7, 12, 26, 950, 0.0042)]
    assert tops == pytest.approx([1, 1, 1, 5, 10, 20, 50, 1000, 0.005])


def test_count_axes_step_by_whole_numbers():
    assert [charts.axis_top(v, whole=True) for v in (0, 2, 3, 4, 9, 26, 950)] == [4, 4, 4, 4, 12, 40, 1000]
    assert charts.axis_top(0.0195) == pytest.approx(0.02)
    svg = charts.bars("Reasons", [("too scary", 2)])
    assert re.findall(r">([\d.]+)</text>", svg) == ["0", "1", "2", "3", "4", "2"]


def test_a_chart_escapes_its_labels():
    svg = charts.bars("Reasons", [("<script>alert(1)</script>", 2)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_money_on_the_axes_keeps_two_significant_digits_however_small():
    # A cost axis for emails at $0.00004 each read "$0 $0 $0 $0.0001 $0.0001".
    ticks = [charts.dollars(charts.axis_top(0.000042) / 4 * n) for n in range(5)]
    assert ticks == ["$0", "$0.00002", "$0.00004", "$0.00006", "$0.00008"] and len(set(ticks)) == 5
    assert [charts.dollars(v) for v in (0.000042, 0.00075, 0.075, 0.5, 1, 1234.5)] == [
        "$0.000042", "$0.00075", "$0.075", "$0.5", "$1.00", "$1,234.50"
    ]  # fmt: skip
