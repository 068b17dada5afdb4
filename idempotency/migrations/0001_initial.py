import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("tenants", "0008_plans_in_data"),
    ]

    operations = [
        migrations.CreateModel(
            name="IdempotencyKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=255)),
                (
                    "fingerprint",
                    models.CharField(help_text="SHA-256 of the method, path, content type and body.", max_length=64),
                ),
                ("claimed_at", models.DateTimeField(help_text="When the request that owns the key started.")),
                (
                    "status",
                    models.PositiveSmallIntegerField(
                        blank=True, help_text="The stored answer's HTTP status.", null=True
                    ),
                ),
                ("content_type", models.CharField(blank=True, max_length=100)),
                ("body", models.BinaryField(blank=True, default=b"")),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.tenant"
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["claimed_at"], name="idempotency_key_claimed_at")],
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "key"), name="one_idempotency_key_per_tenant")
                ],
            },
        ),
    ]
