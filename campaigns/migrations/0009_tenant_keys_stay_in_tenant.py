"""Every foreign key of a campaign, run, batch record and email points at a row of its own tenant, checked by
PostgreSQL."""

from django.db import migrations

from tenants.constraints import SameTenantKey, TenantUnique


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0008_email_send_failed_unknown_and_resolution"),
        ("datasets", "0003_tenant_keys_stay_in_tenant"),
    ]

    operations = [
        TenantUnique("prompttemplate"),
        TenantUnique("campaign"),
        TenantUnique("campaignrun"),
        SameTenantKey("campaign", "template"),
        SameTenantKey("campaignrun", "campaign"),
        SameTenantKey("batchrecord", "run"),
        SameTenantKey("batchrecord", "contact"),
        SameTenantKey("generatedemail", "run"),
        SameTenantKey("generatedemail", "contact"),
    ]
