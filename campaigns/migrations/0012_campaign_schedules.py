"""A campaign's schedule ticks (each firing of its schedule and what came of it), and recurring audiences."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from tenants.constraints import SameTenantKey, TenantUnique


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0011_desk_and_audit"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="CampaignTick",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "outcome",
                    models.CharField(
                        choices=[("launched", "Launched"), ("skipped", "Skipped"), ("failed", "Failed")],
                        max_length=10,
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=500)),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="ticks", to="campaigns.campaign"
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="campaigns.campaignrun",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.tenant"
                    ),
                ),
            ],
            options={"ordering": ("-at", "-pk")},
        ),
        migrations.AlterField(
            model_name="campaign",
            name="audience",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='Who each run writes to, worked out afresh at every run. {} is everyone; {"kind": "filter", '
                '"min_age": 18, "max_age": 34, "gender": "female", "locale": "en_US", "attributes": {"plan": "gold"}, '
                '"favorite_genre": "Comedy"}; {"kind": "not_emailed", "days": 30}; {"kind": "active_since_last_run"} '
                "(both also take the filter keys). Unsubscribed contacts are never in it.",
            ),
        ),
        SameTenantKey("campaigntick", "campaign"),
        SameTenantKey("campaigntick", "run"),
        TenantUnique("generatedemail"),
        SameTenantKey("emailevent", "email"),
    ]
