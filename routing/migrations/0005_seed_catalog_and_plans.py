"""Today's catalog (the models, their prices) and plans (Basic, Pro: their model and fallback per backend), as data."""

from django.db import migrations


def forwards(apps, schema_editor):
    from routing.seed import seed

    seed(
        apps.get_model("routing", "ModelEntry"),
        apps.get_model("routing", "Plan"),
        apps.get_model("routing", "PlanRoute"),
    )


class Migration(migrations.Migration):
    dependencies = [("routing", "0004_catalog_and_plans")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
