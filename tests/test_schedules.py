"""Campaign schedules: validated before anything is saved, replaced and removed without leaving rows behind, and
gone with their campaign."""

import pytest
from django.db import DatabaseError, connection
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from campaigns import tasks
from campaigns.models import Campaign, CampaignRun, CampaignTick, TickOutcome
from campaigns.schedules import (
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_schedule_get,
    campaign_unschedule,
    schedule_name,
)
from campaigns.services import CampaignError
from tests.conftest import make_catalog

API = "/api/v1"


@pytest.fixture
def campaign(scoped):
    return Campaign.objects.create(tenant=scoped, name="weekly")


@pytest.mark.parametrize(
    "cron, timezone_name, says",
    [
        ("99 * * * *", "UTC", "minute"),
        ("0 25 * * *", "UTC", "hour"),
        ("0 9 32 * *", "UTC", "day_of_month"),
        ("0 9 * 13 *", "UTC", "month_of_year"),
        ("0 9 * * funday", "UTC", "day_of_week"),
        ("0 9 * * 1", "Mars/Olympus_Mons", "timezone"),
        ("0 9 * * 1", "", "timezone"),
        ("0" * 300 + " 9 * * 1", "UTC", "minute"),
    ],
)
def test_an_invalid_schedule_saves_nothing_and_says_which_field(campaign, cron, timezone_name, says):
    with pytest.raises(CampaignError, match=f"not valid.*{says}"):
        campaign_schedule(campaign=campaign, cron=cron, timezone_name=timezone_name)
    assert not CrontabSchedule.objects.exists() and not PeriodicTask.objects.exists()


def test_a_database_error_is_not_reported_as_an_invalid_cron(campaign):
    """A failure of the database itself propagates as what it is, and leaves nothing half-written."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ "
                       "LANGUAGE plpgsql")  # fmt: skip
        cursor.execute("CREATE TRIGGER refuse BEFORE INSERT ON django_celery_beat_periodictask "
                       "FOR EACH ROW EXECUTE FUNCTION refuse()")  # fmt: skip
    with pytest.raises(DatabaseError, match="disk full"):
        campaign_schedule(campaign=campaign, cron="0 9 * * 1")
    assert not CrontabSchedule.objects.exists()


def test_rescheduling_replaces_the_crontab_and_unscheduling_removes_it(campaign):
    nightly = CrontabSchedule.objects.create(minute="0", hour="2")  # someone else's: never touched
    other = PeriodicTask.objects.create(name="nightly", task="x", crontab=nightly)
    campaign_schedule(campaign=campaign, cron="0 9 * * 1")
    task = campaign_schedule(campaign=campaign, cron="30 8 * * 1-5", timezone_name="Europe/Paris")
    assert (task.crontab.minute, str(task.crontab.timezone)) == ("30", "Europe/Paris")
    assert set(CrontabSchedule.objects.values_list("minute", flat=True)) == {"0", "30"}  # the 9:00 one is gone
    assert PeriodicTask.objects.filter(name=schedule_name(campaign)).count() == 1
    assert campaign_unschedule(campaign=campaign) is True
    assert campaign_unschedule(campaign=campaign) is False
    assert list(CrontabSchedule.objects.all()) == [nightly] and list(PeriodicTask.objects.all()) == [other]


def test_two_campaigns_on_the_same_cron_share_it_until_both_are_gone(scoped, campaign):
    second = Campaign.objects.create(tenant=scoped, name="second")
    campaign_schedule(campaign=campaign, cron="0 9 * * 1")
    campaign_schedule(campaign=second, cron="0 9 * * 1")
    assert CrontabSchedule.objects.count() == 1
    campaign_unschedule(campaign=campaign)
    assert CrontabSchedule.objects.count() == 1 and PeriodicTask.objects.get().name == schedule_name(second)
    second.delete()
    assert not CrontabSchedule.objects.exists() and not PeriodicTask.objects.exists()


def test_deleting_a_campaign_deletes_its_schedule(owner_api, scoped, campaign):
    campaign_schedule(campaign=campaign, cron="0 9 * * 1")
    assert owner_api.delete(f"{API}/campaigns/{campaign.pk}/").status_code == 204
    assert not PeriodicTask.objects.exists() and not CrontabSchedule.objects.exists()


def test_deleting_a_tenant_deletes_its_campaigns_schedules(tenant, campaign):
    campaign_schedule(campaign=campaign, cron="0 9 * * 1")
    tenant.delete()
    assert not PeriodicTask.objects.exists() and not CrontabSchedule.objects.exists()


def test_a_schedule_whose_campaign_is_gone_removes_itself_when_it_fires(tenant, campaign):
    task = campaign_schedule(campaign=campaign, cron="0 9 * * 1")
    Campaign.dangerously_unscoped.filter(pk=campaign.pk)._raw_delete(connection.alias)  # as if the signal never ran
    assert PeriodicTask.objects.filter(pk=task.pk).exists()
    assert tasks.campaign_launch(campaign.pk, tenant.pk) is None
    assert not PeriodicTask.objects.exists() and not CrontabSchedule.objects.exists()


def test_the_api_answers_400_for_an_invalid_schedule_and_keeps_nothing(owner_api, campaign):
    url = f"{API}/campaigns/{campaign.pk}/schedule/"
    bad = owner_api.post(url, {"cron": "0 9 * * 1", "timezone": "Nowhere/Land"}, format="json")
    assert bad.status_code == 400 and "timezone" in str(bad.json()) and "not valid" in str(bad.json())
    assert not CrontabSchedule.objects.exists()
    assert owner_api.post(url, {"cron": "0 9 * * 1"}, format="json").status_code == 201


# Intervals, pause and resume, and the ticks each firing leaves on the campaign.


def test_an_interval_schedule_replaces_a_cron_one_and_leaves_no_rows_behind(campaign):
    campaign_schedule(campaign=campaign, cron="0 9 * * 1", timezone_name="Europe/Paris")
    task = campaign_schedule(campaign=campaign, every=2, period="hours")
    assert (task.interval.every, task.interval.period, task.crontab) == (2, "hours", None)
    assert not CrontabSchedule.objects.exists()
    shown = campaign_schedule_get(campaign=campaign)
    assert (shown.kind, shown.every, shown.period, shown.enabled) == ("interval", 2, "hours", True)
    assert str(shown) == "every 2 hours"
    campaign_schedule(campaign=campaign, cron="30 8 * * 1-5", timezone_name="America/New_York")
    assert not IntervalSchedule.objects.exists()
    assert str(campaign_schedule_get(campaign=campaign)) == "cron 30 8 * * 1-5 (America/New_York)"
    campaign.delete()
    assert not (PeriodicTask.objects.exists() or CrontabSchedule.objects.exists() or IntervalSchedule.objects.exists())


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"every": 0, "period": "minutes"}, "every: a whole number"),
        ({"every": -5, "period": "minutes"}, "every: a whole number"),
        ({"every": "5", "period": "minutes"}, "every: a whole number"),
        ({"every": True, "period": "minutes"}, "every: a whole number"),
        ({"every": 5, "period": "fortnights"}, "period: one of seconds, minutes, hours, days"),
        ({"every": 5, "cron": "0 9 * * 1"}, "either a cron expression or an interval"),
        ({}, "either a cron expression or an interval"),
    ],
)
def test_an_invalid_interval_saves_nothing_and_says_why(campaign, kwargs, says):
    with pytest.raises(CampaignError, match=says):
        campaign_schedule(campaign=campaign, **kwargs)
    assert not IntervalSchedule.objects.exists() and not PeriodicTask.objects.exists()


def test_pause_and_resume_flip_the_beat_task_and_rescheduling_resumes(campaign):
    assert campaign_pause(campaign=campaign) is False  # nothing to pause
    campaign_schedule(campaign=campaign, every=10, period="minutes")
    assert campaign_pause(campaign=campaign) is True
    assert PeriodicTask.objects.get().enabled is False
    assert str(campaign_schedule_get(campaign=campaign)) == "every 10 minutes, paused"
    assert campaign_resume(campaign=campaign) is True and PeriodicTask.objects.get().enabled is True
    campaign_pause(campaign=campaign)
    campaign_schedule(campaign=campaign, every=5, period="minutes")
    assert PeriodicTask.objects.get().enabled is True


def test_renaming_a_campaign_renames_its_schedule(campaign):
    campaign_schedule(campaign=campaign, every=1, period="days")
    campaign.name = "Friday night"
    campaign.save()
    assert PeriodicTask.objects.get().description == "launches campaign 'Friday night'"


def test_each_tick_is_recorded_launched_skipped_or_failed(tenant, scoped, campaign):
    campaign_schedule(campaign=campaign, every=1, period="minutes")
    assert tasks.campaign_launch(campaign.pk, tenant.pk) is None  # no contacts yet
    make_catalog(tenant, n_contacts=3)
    run_id = tasks.campaign_launch(campaign.pk, tenant.pk)  # the run stays queued: on_commit never fires here
    assert tasks.campaign_launch(campaign.pk, tenant.pk) is None
    campaign_pause(campaign=campaign)
    tasks.campaign_launch(campaign.pk, tenant.pk)  # a tick sent just before the pause
    ticks = list(CampaignTick.objects.filter(campaign=campaign).order_by("at", "pk"))
    assert [t.outcome for t in ticks] == [TickOutcome.FAILED, TickOutcome.LAUNCHED, TickOutcome.SKIPPED,
                                          TickOutcome.SKIPPED]  # fmt: skip
    assert "no subscribed contacts" in ticks[0].detail and ticks[0].run is None
    assert ticks[1].run_id == run_id and "3 contacts" in ticks[1].detail
    assert ticks[2].run_id == run_id and f"already has an active run (#{run_id})" in ticks[2].detail
    assert ticks[3].detail == "the schedule is paused"
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1


def test_the_api_schedules_by_interval_pauses_resumes_and_lists_ticks(owner_api, tenant, scoped, campaign):
    url = f"{API}/campaigns/{campaign.pk}"
    assert owner_api.get(f"{url}/schedule/").status_code == 404
    made = owner_api.post(f"{url}/schedule/", {"every": 15, "period": "minutes"}, format="json")
    assert made.status_code == 201 and made.json()["text"] == "every 15 minutes"
    both = owner_api.post(f"{url}/schedule/", {"every": 15, "cron": "0 9 * * 1"}, format="json")
    assert both.status_code == 400 and "not both" in str(both.json())
    bad = owner_api.post(f"{url}/schedule/", {"every": 15, "period": "weeks"}, format="json")
    assert bad.status_code == 400 and "period" in bad.json()["error"]["fields"]
    assert owner_api.post(f"{url}/pause/").json()["enabled"] is False
    assert owner_api.get(f"{url}/").json()["schedule"]["text"] == "every 15 minutes, paused"
    assert owner_api.post(f"{url}/resume/").json()["enabled"] is True
    tasks.campaign_launch(campaign.pk, tenant.pk)
    ticks = owner_api.get(f"{url}/ticks/").json()
    assert [t["outcome"] for t in ticks["results"]] == ["failed"]
    assert owner_api.get(f"{url}/").json()["last_tick"]["outcome"] == "failed"


def test_reviewers_cannot_schedule_or_pause_and_other_tenants_see_nothing(
    reviewer_api, outsider_api, tenant, scoped, campaign
):
    campaign_schedule(campaign=campaign, every=15, period="minutes")
    tasks.campaign_launch(campaign.pk, tenant.pk)
    url = f"{API}/campaigns/{campaign.pk}"
    for action in ("pause", "resume", "schedule"):
        assert reviewer_api.post(f"{url}/{action}/", {"every": 1}, format="json").status_code == 403
    assert reviewer_api.get(f"{url}/ticks/").status_code == 200  # reading is every role's
    for method, action in (("get", "ticks"), ("get", "schedule"), ("post", "pause"), ("post", "resume")):
        assert getattr(outsider_api, method)(f"{url}/{action}/").status_code == 404
    assert PeriodicTask.objects.get().enabled is True
