import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("datasets", "0006_consent_source_mailto")]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="updated_at",
            field=models.DateTimeField(
                auto_now=True,
                default=django.utils.timezone.now,
                help_text="Last change: a save, an import or a consent change.",
            ),
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(fields=["tenant", "updated_at"], name="contact_tenant_updated"),
        ),
    ]
