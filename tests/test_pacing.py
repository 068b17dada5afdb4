"""Pacing, in-process against a real SMTP server (aiosmtpd) and PostgreSQL, with only the clock driven: the run's
send as a fan-out of one task per email in chunks, the complaint pause, send windows in the contact's own time,
the frequency cap (wait and skip, and two senders at once), the tenant's rate, and what the pages show."""

import threading
from datetime import UTC, datetime, time, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from django.utils import timezone

from campaigns import pacing, sending, tasks
from campaigns.models import Campaign, CampaignRun, EmailEvent, EmailStatus, EventKind, GeneratedEmail
from datasets.models import Contact
from routing import ratelimit
from saas.celery import app as celery_app
from tenants.scoping import tenant_scope
from tests.conftest import api_client

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # New York 08:00 (EDT), Paris 14:00 (CEST), Tokyo 21:00


def at(moment: datetime):
    """The clock, and only the clock, set to `moment` wherever the product reads it (django.utils.timezone)."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


def in_process(pk: int, tenant_id: int):
    return tasks.email_send.apply((pk, tenant_id)).get()


def person(tenant, n: int, **fields) -> Contact:
    fields.setdefault("email", f"person{n}@example.com")
    return Contact.dangerously_unscoped.create(tenant=tenant, external_id=f"p{n}", first_name=f"P{n}", **fields)


def approved_run(tenant, contacts, *, window: tuple[time, time] | None = None, name: str = "") -> CampaignRun:
    start, end = window or (None, None)
    campaign = Campaign.dangerously_unscoped.create(
        tenant=tenant, name=name or f"pacing {Campaign.dangerously_unscoped.count()}", send_window_start=start,
        send_window_end=end,
    )  # fmt: skip
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status="completed")
    GeneratedEmail.dangerously_unscoped.bulk_create(
        GeneratedEmail(tenant=tenant, run=run, contact=c, subject="Picks", body="Hello.", status=EmailStatus.APPROVED)
        for c in contacts
    )
    return run


def by_address(run) -> dict[str, GeneratedEmail]:
    emails = GeneratedEmail.dangerously_unscoped.filter(run=run).select_related("contact")
    return {e.contact.email: e for e in emails}


def events(email, kind) -> list[EmailEvent]:
    return list(EmailEvent.dangerously_unscoped.filter(email=email, kind=kind))


# The fan-out


def test_the_run_send_enqueues_one_task_per_email_in_chunks_and_once(scoped, tenant, settings):
    settings.EMAIL_SEND_CHUNK, settings.EMAIL_SEND_QUEUED_SECONDS = 2, 900
    tenant.send_rate_per_second = 1
    tenant.save()
    run = approved_run(tenant, [person(tenant, n) for n in range(5)])
    queued: list[int] = []
    with at(NOON):
        assert sending.run_send_approved(run=run, enqueue=lambda pk, tenant_id: queued.append(pk)) == 5
        assert sending.run_send_approved(run=run, enqueue=lambda pk, tenant_id: queued.append(pk)) == 0
        assert sending.emails_send_due(enqueue=lambda pk, tenant_id: queued.append(pk)) == 0
    ids = sorted(GeneratedEmail.dangerously_unscoped.filter(run=run).values_list("pk", flat=True))
    assert queued == ids  # each once, in order
    # Each chunk's emails are held for the time their tasks should take: 900 s plus their place in line at 1/s.
    held = GeneratedEmail.dangerously_unscoped.filter(run=run).order_by("pk").values_list("send_after", flat=True)
    assert [(t - NOON).total_seconds() for t in held] == [902, 902, 904, 904, 905]
    assert sending.run_send_states(run=run)["queued"] == 5
    with at(NOON + timedelta(seconds=906)):  # their tasks were lost: the beat's sweep queues them again
        assert sending.emails_send_due(enqueue=lambda pk, tenant_id: queued.append(pk)) == 5
    assert len(queued) == 10


def test_a_run_sent_twice_in_process_sends_each_email_once(scoped, tenant, smtp_server):
    run = approved_run(tenant, [person(tenant, n) for n in range(4)])
    assert sending.run_send_approved(run=run, enqueue=in_process) == 4
    assert sending.run_send_approved(run=run, enqueue=in_process) == 0
    for pk in GeneratedEmail.dangerously_unscoped.filter(run=run).values_list("pk", flat=True):
        assert in_process(pk, tenant.pk) == EmailStatus.SENT  # a duplicate task finds it sent
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [f"person{n}@example.com" for n in range(4)]
    assert sending.run_send_states(run=run) == dict.fromkeys(sending.SEND_STATES, 0) | {"sent": 4}


def test_a_passing_failure_stays_asked_for_its_retry_and_is_let_go_after_the_last(
    scoped, tenant, smtp_server, settings
):
    smtp_server.defer["person1@example.com"] = ["451 4.3.0 try again later"]
    run = approved_run(tenant, [person(tenant, 1)])
    email = GeneratedEmail.objects.select_related("contact", "tenant", "run__campaign").get(run=run)
    with at(NOON), pytest.raises(sending.SendDeferred):
        sending.email_send(email=email)  # on a worker, the task retries it within 600 s
    email.refresh_from_db()
    lease = NOON + timedelta(seconds=settings.EMAIL_SEND_QUEUED_SECONDS + 600)
    assert (email.status, email.send_after) == (EmailStatus.APPROVED, lease) and "451" in email.send_error
    assert sending.run_send_states(run=run)["queued"] == 1
    with at(NOON + timedelta(seconds=600)):  # the retry is the task's: the sweep leaves it
        assert sending.emails_send_due(enqueue=in_process) == 0
    smtp_server.defer["person1@example.com"] = ["451 4.3.0 still busy"]
    assert in_process(email.pk, tenant.pk) == EmailStatus.APPROVED  # in-process, its last try
    email.refresh_from_db()
    assert email.send_after is None and "still busy" in email.send_error  # no longer asked: a person sends again
    assert sending.run_send_states(run=run)["approved"] == 1 and smtp_server.received == []


# The complaint pause


def test_a_paused_tenant_sends_nothing_until_resumed(scoped, tenant, smtp_server):
    tenant.sending_paused_at, tenant.sending_paused_reason = timezone.now(), "complaints at 0.4% over 7 days"
    tenant.save()
    run = approved_run(tenant, [person(tenant, 1), person(tenant, 2)])
    assert sending.run_send_approved(run=run, enqueue=in_process) == 2
    for email in by_address(run).values():
        assert email.status == EmailStatus.APPROVED and email.send_after is not None
        assert email.send_error == "sending is paused: complaints at 0.4% over 7 days"
        assert [e.detail["reason"] for e in events(email, EventKind.SEND_WAITING)] == [email.send_error]
    assert sending.emails_send_due(enqueue=in_process) == 0  # the sweep leaves a paused tenant's emails
    assert smtp_server.received == [] and sending.run_send_states(run=run)["waiting"] == 2

    tenant.sending_paused_at, tenant.sending_paused_reason = None, ""
    tenant.save()
    assert sending.emails_send_due(enqueue=in_process) == 2
    assert {e.status for e in by_address(run).values()} == {EmailStatus.SENT}
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["person1@example.com", "person2@example.com"]
    assert all(e.send_error == "" for e in by_address(run).values())


# Send windows, in each contact's own time


def test_locales_give_their_countrys_main_zone():
    assert pacing.locale_zone("fr_FR") == "Europe/Paris"
    assert pacing.locale_zone("en_US") == "America/New_York"
    assert pacing.locale_zone("en-CA") == "America/Toronto"  # not zone.tab's first line for Canada
    assert pacing.locale_zone("de_DE.UTF-8") == "Europe/Berlin"
    assert pacing.locale_zone("ja_JP") == "Asia/Tokyo"
    assert pacing.locale_zone("pt_BR") == "America/Sao_Paulo"
    assert pacing.locale_zone("de") == pacing.locale_zone("xx_QQ") == pacing.locale_zone("") == ""
    assert pacing.country_zones()["NZ"] == "Pacific/Auckland"  # read from the installed zone.tab


@pytest.mark.parametrize(
    "local, window, opens",
    [
        ("08:00", ("09:00", "17:00"), "09:00 same day"),
        ("12:00", ("09:00", "17:00"), None),
        ("17:00", ("09:00", "17:00"), "09:00 next day"),  # the end is not in the window
        ("23:30", ("22:00", "06:00"), None),  # spans midnight
        ("05:59", ("22:00", "06:00"), None),
        ("06:00", ("22:00", "06:00"), "22:00 same day"),
        ("12:00", ("12:00", "12:00"), None),  # start == end: any time
    ],
)
def test_the_window_and_its_next_opening(local, window, opens):
    zone = ZoneInfo("Europe/Paris")
    day = datetime(2026, 3, 10, *map(int, local.split(":")), tzinfo=zone)
    start, end = (time.fromisoformat(t) for t in window)
    opening = pacing.window_opening(day.astimezone(UTC), start, end, zone)
    if opens is None:
        assert opening is None
    else:
        hour, which = opens.split(" ", 1)
        date = day.date() + timedelta(days=1 if which == "next day" else 0)
        assert opening == datetime.combine(date, time.fromisoformat(hour), tzinfo=zone).astimezone(UTC)


def test_emails_wait_for_the_window_in_each_contacts_own_time(scoped, tenant, smtp_server):
    tenant.timezone = "Asia/Tokyo"
    tenant.save()
    new_york = person(tenant, 1, timezone="America/New_York", locale="fr_FR")  # its own zone wins over its locale
    paris = person(tenant, 2, locale="fr_FR")
    tokyo = person(tenant, 3)  # neither: the tenant's zone
    run = approved_run(tenant, [new_york, paris, tokyo], window=(time(9), time(17)))
    with at(NOON):
        assert sending.run_send_approved(run=run, enqueue=in_process) == 3
    emails = by_address(run)
    assert emails[paris.email].status == EmailStatus.SENT  # 14:00 in Paris
    assert [r.rcpt_tos for r in smtp_server.received] == [[paris.email]]
    waiting = {new_york.email: datetime(2026, 6, 1, 13, tzinfo=UTC), tokyo.email: datetime(2026, 6, 2, 0, tzinfo=UTC)}
    for address, opening in waiting.items():
        email = emails[address]
        assert (email.status, email.send_after) == (EmailStatus.APPROVED, opening)
        assert email.send_error.startswith("outside the campaign's send window (09:00–17:00 ")
        (event,) = events(email, EventKind.SEND_WAITING)
        assert event.detail["until"] == opening.isoformat() and "send window" in event.detail["reason"]
    assert "America/New_York" in emails[new_york.email].send_error and "Asia/Tokyo" in emails[tokyo.email].send_error
    assert sending.run_send_states(run=run) == dict.fromkeys(sending.SEND_STATES, 0) | {"sent": 1, "waiting": 2}

    with at(datetime(2026, 6, 1, 12, 59, tzinfo=UTC)):  # a minute early: nothing is due
        assert sending.emails_send_due(enqueue=in_process) == 0
    with at(datetime(2026, 6, 1, 13, 0, 30, tzinfo=UTC)):  # the beat's sweep after 09:00 in New York
        assert sending.emails_send_due(enqueue=in_process) == 1
    assert by_address(run)[new_york.email].status == EmailStatus.SENT
    assert by_address(run)[tokyo.email].status == EmailStatus.APPROVED
    with at(datetime(2026, 6, 2, 0, 0, 30, tzinfo=UTC)):  # 09:00 in Tokyo
        assert sending.emails_send_due(enqueue=in_process) == 1
    assert {e.status for e in by_address(run).values()} == {EmailStatus.SENT}
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted([new_york.email, paris.email, tokyo.email])


def test_a_window_across_midnight(scoped, tenant, smtp_server):
    night_owl = person(tenant, 1, timezone="Europe/Paris")
    run = approved_run(tenant, [night_owl], window=(time(22), time(6)))
    with at(NOON):  # 14:00 in Paris: wait for 22:00 Paris, 20:00 UTC
        sending.run_send_approved(run=run, enqueue=in_process)
    assert by_address(run)[night_owl.email].send_after == datetime(2026, 6, 1, 20, tzinfo=UTC)
    with at(datetime(2026, 6, 2, 1, tzinfo=UTC)):  # 03:00 in Paris, inside
        assert sending.emails_send_due(enqueue=in_process) == 1
    assert by_address(run)[night_owl.email].status == EmailStatus.SENT


# The frequency cap


def sent_before(tenant, contact, *, days_ago: float, n: int) -> GeneratedEmail:
    run = approved_run(tenant, [contact], name=f"earlier {n}")
    email = GeneratedEmail.dangerously_unscoped.get(run=run)
    email.status, email.sent_at = EmailStatus.SENT, NOON - timedelta(days=days_ago)
    email.save()
    return email


def capped_tenant(tenant, action: str):
    tenant.frequency_cap, tenant.frequency_period_days, tenant.frequency_cap_action = 2, 7, action
    tenant.save()


def test_over_the_cap_an_email_waits_until_the_oldest_send_leaves_the_period(scoped, tenant, smtp_server):
    capped_tenant(tenant, "wait")
    contact = person(tenant, 1, email="ann@example.com")
    twin = person(tenant, 2, email="Ann@Example.com")  # the same person imported twice: counted by address
    sent_before(tenant, contact, days_ago=3, n=1)
    sent_before(tenant, twin, days_ago=1, n=2)
    sent_before(tenant, contact, days_ago=8, n=3)  # outside the period: not counted
    other = person(tenant, 3, email="bob@example.com")
    run = approved_run(tenant, [contact, other])
    with at(NOON):
        assert sending.run_send_approved(run=run, enqueue=in_process) == 2
    emails = by_address(run)
    assert emails["bob@example.com"].status == EmailStatus.SENT
    ann = emails["ann@example.com"]
    assert (ann.status, ann.send_after) == (EmailStatus.APPROVED, NOON + timedelta(days=4))
    assert ann.send_error == "over the frequency cap: 2 email(s) per 7 day(s) to ann@example.com"
    (event,) = events(ann, EventKind.SEND_WAITING)
    assert event.detail == {"reason": ann.send_error, "until": (NOON + timedelta(days=4)).isoformat()}

    with at(NOON + timedelta(days=2)):  # the sweep does not pick it before its time
        assert sending.emails_send_due(enqueue=in_process) == 0
    with at(NOON + timedelta(days=4, minutes=1)):
        assert sending.emails_send_due(enqueue=in_process) == 1
    assert by_address(run)["ann@example.com"].status == EmailStatus.SENT
    assert [r.rcpt_tos for r in smtp_server.received] == [["bob@example.com"], ["ann@example.com"]]


def test_over_the_cap_with_skip_the_email_is_skipped_with_the_reason(scoped, tenant, smtp_server):
    capped_tenant(tenant, "skip")
    contact = person(tenant, 1)
    sent_before(tenant, contact, days_ago=1, n=1)
    sending_now = sent_before(tenant, contact, days_ago=0, n=2)
    sending_now.status, sending_now.sent_at, sending_now.send_claimed_at = EmailStatus.SENDING, None, NOON
    sending_now.save()  # one being sent right now counts too
    run = approved_run(tenant, [contact])
    with at(NOON + timedelta(minutes=1)):
        sending.run_send_approved(run=run, enqueue=in_process)
    email = by_address(run)[contact.email]
    assert email.status == EmailStatus.SKIPPED and "over the frequency cap: 2 email(s) per 7 day(s)" in email.send_error
    assert [e.status for e in events(email, EventKind.SKIPPED)] == [EmailStatus.SKIPPED]
    assert smtp_server.received == [] and sending.run_send_states(run=run)["skipped"] == 1
    assert sending.emails_send_due(enqueue=in_process) == 0  # skipped is final


def test_two_senders_at_once_cannot_both_pass_the_cap(transactional_db, tenant, smtp_server):
    tenant.frequency_cap, tenant.frequency_cap_action = 1, "skip"
    tenant.save()
    contact = person(tenant, 1)
    first, second = (GeneratedEmail.dangerously_unscoped.get(run=approved_run(tenant, [contact])) for _ in range(2))
    barrier, outcomes = threading.Barrier(2), {}

    def send(email_id):
        try:
            with tenant_scope(tenant):
                email = GeneratedEmail.objects.select_related("contact", "tenant", "run__campaign").get(pk=email_id)
                barrier.wait()
                outcomes[email_id] = sending.email_send(email=email)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(email.pk,)) for email in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes.values()) == [EmailStatus.SENT, EmailStatus.SKIPPED]
    assert len(smtp_server.received) == 1


# The tenant's rate, without Redis (the embedded default: the process's own window)


def test_without_redis_the_rate_holds_in_process(scoped, tenant, smtp_server, settings, monkeypatch):
    settings.REDIS_URL, settings.EMAIL_SEND_RATE_PER_SECOND = "", 4  # the platform's rate; the tenant sets none
    monkeypatch.setattr(ratelimit, "_send_limiter", None)  # built again from these settings: a LocalWindow
    run = approved_run(tenant, [person(tenant, n) for n in range(10)])
    assert sending.run_send_approved(run=run, enqueue=in_process) == 10
    assert isinstance(ratelimit.send_limiter().window, ratelimit.LocalWindow)
    arrivals = sorted(r.at for r in smtp_server.received)
    assert len(arrivals) == 10 and most_in_a_second(arrivals) <= 4
    assert arrivals[-1] - arrivals[0] >= 2  # 10 at 4/s: at least two windows of waiting


def test_no_room_in_the_rate_in_time_leaves_the_email_approved_for_a_retry(scoped, tenant, smtp_server, settings):
    settings.EMAIL_SEND_RATE_TIMEOUT = 0.2  # far less than the second the next token takes at 1/s
    tenant.send_rate_per_second = 1
    tenant.save()
    run = approved_run(tenant, [person(tenant, 1), person(tenant, 2)])
    assert sending.run_send_approved(run=run, enqueue=in_process) == 2
    emails = by_address(run)
    later = emails["person2@example.com"]
    assert emails["person1@example.com"].status == EmailStatus.SENT
    assert later.status == EmailStatus.APPROVED and later.send_error.startswith(
        f"rate limit tenant:{tenant.pk}: no room"
    )
    assert [e.status for e in events(later, EventKind.SEND_DEFERRED)] == [EmailStatus.APPROVED]
    assert [r.rcpt_tos for r in smtp_server.received] == [["person1@example.com"]]  # nothing handed over for it


def most_in_a_second(arrivals: list[float]) -> int:
    """The most arrivals in any window of one second (sliding: from each arrival on)."""
    return max(sum(1 for t in arrivals[i:] if t < start + 1.0) for i, start in enumerate(arrivals))


# What the beat, the API and the pages show


def test_the_due_sweep_is_declared_in_code_every_minute_with_an_expiry():
    entry = celery_app.conf.beat_schedule["campaigns-send-due-emails"]
    assert entry["task"] == tasks.emails_send_due.name == "campaigns.tasks.emails_send_due"
    assert entry["schedule"].run_every == timedelta(minutes=1)
    assert entry["options"]["expires"] < 60


def test_the_api_says_how_many_were_queued_and_counts_the_sending_states(tenant, other_tenant):
    run = approved_run(tenant, [person(tenant, n) for n in range(3)])
    client = api_client(tenant)
    answer = client.post(f"/api/v1/runs/{run.pk}/send/")  # in a test transaction: the fan-out waits for a commit
    assert answer.status_code == 202, answer.content
    assert answer.json()["queued"] == 3 and answer.json()["sending"]["queued"] == 3
    shown = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert shown["sending"] == dict.fromkeys(sending.SEND_STATES, 0) | {"queued": 3}
    assert api_client(other_tenant).post(f"/api/v1/runs/{run.pk}/send/").status_code == 404
    email = GeneratedEmail.dangerously_unscoped.filter(run=run).first()
    assert client.get(f"/api/v1/emails/{email.pk}/").json()["send_after"]


def test_the_run_page_the_email_page_and_the_desk_show_the_sending_state(tenant, staff_client, smtp_server):
    tenant.sending_paused_at, tenant.sending_paused_reason = timezone.now(), "too many complaints"
    tenant.save()
    run = approved_run(tenant, [person(tenant, 1), person(tenant, 2)])
    with tenant_scope(tenant):
        sending.run_send_approved(run=run, enqueue=in_process)
    page = staff_client.get(f"/admin/campaigns/campaignrun/{run.pk}/change/").content.decode()
    assert 'data-sending="waiting">2<' in page and 'data-sending="sent">0<' in page
    assert 'data-sending-busy="false"' in page  # waiting for a resume: nothing to poll for
    sending.run_send_approved(run=approved_run(tenant, [person(tenant, 3)]), enqueue=lambda pk, tenant_id: None)
    queued = CampaignRun.dangerously_unscoped.latest("pk")
    page = staff_client.get(f"/admin/campaigns/campaignrun/{queued.pk}/change/").content.decode()
    assert 'data-sending="queued">1<' in page and 'data-sending-busy="true"' in page  # its counts will move
    email = GeneratedEmail.dangerously_unscoped.filter(run=run).first()
    page = staff_client.get(f"/admin/campaigns/generatedemail/{email.pk}/change/").content.decode()
    assert "sending is paused: too many complaints" in page and "Send after" in page
    (card,) = staff_client.get("/admin/campaigns/generatedemail/desk/cards/", {"ids": str(email.pk)}).json()["cards"]
    assert card["send_error"] == "sending is paused: too many complaints" and card["send_after"]
