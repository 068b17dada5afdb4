from django.db import migrations

from routing import seed


def seed_judge(apps, schema_editor):
    seed.seed_judge(*(apps.get_model("routing", name) for name in ("ModelEntry", "Plan", "PlanRoute")))


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0010_dynamic_routing"),
    ]

    operations = [
        migrations.RunPython(seed_judge, migrations.RunPython.noop),
    ]
