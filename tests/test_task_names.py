"""Tasks are named after the services they wrap; beat's rows written under an old name follow a rename."""

from importlib import import_module

from django.apps import apps
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns import schedules
from campaigns.models import Campaign
from saas.celery import app as celery_app

rename = import_module("campaigns.migrations.0007_rename_beat_task")


def test_the_scheduled_launch_is_a_registered_task_named_after_its_service(tenant):
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="weekly")
    task = schedules.campaign_schedule(campaign=campaign, cron="0 9 * * 1")
    assert task.task == "campaigns.tasks.campaign_launch" and task.task in celery_app.tasks


def test_the_migration_renames_the_schedules_beat_already_has(db):
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.DAYS)
    PeriodicTask.objects.create(name="campaign:1:1", task=rename.OLD, interval=every)
    PeriodicTask.objects.create(name="other", task="recommendations.tasks.retrain", interval=every)
    rename.rename(apps, None)
    assert dict(PeriodicTask.objects.values_list("name", "task")) == {
        "campaign:1:1": "campaigns.tasks.campaign_launch",
        "other": "recommendations.tasks.retrain",
    }
    rename.rename_back(apps, None)
    assert PeriodicTask.objects.get(name="campaign:1:1").task == rename.OLD
