"""Routes for the "shorten" and "subject" tasks on every plan (routing.seed.TASK_ROUTES), on the plan's cheap model."""

from django.db import migrations

from routing import seed


def seed_task_routes(apps, schema_editor):
    seed.seed_task_routes(*(apps.get_model("routing", name) for name in ("ModelEntry", "Plan", "PlanRoute")))


def unseed_task_routes(apps, schema_editor):
    tasks = {task for _, _, task, _, _ in seed.TASK_ROUTES}
    apps.get_model("routing", "PlanRoute").objects.filter(task__in=tasks).delete()


class Migration(migrations.Migration):
    dependencies = [("routing", "0011_judge_routes")]

    operations = [migrations.RunPython(seed_task_routes, unseed_task_routes)]
