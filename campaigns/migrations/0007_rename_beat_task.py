"""Beat's entry for scheduled campaigns is named after the service it wraps: existing schedules follow."""

from django.db import migrations

OLD, NEW = "campaigns.tasks.launch_scheduled", "campaigns.tasks.campaign_launch"


def rename(apps, schema_editor, old=OLD, new=NEW):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=old).update(task=new)


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, old=NEW, new=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_run_quota_and_regenerating"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
