"""Campaign schedules: validated before anything is saved, replaced and removed without leaving rows behind, and
gone with their campaign."""

import pytest
from django.db import DatabaseError, connection
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from campaigns import tasks
from campaigns.models import Campaign
from campaigns.schedules import campaign_schedule, campaign_unschedule, schedule_name
from campaigns.services import CampaignError

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
