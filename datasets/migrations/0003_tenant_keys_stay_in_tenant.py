"""Interactions' contact and item, and consent records' contact, are rows of their own tenant, checked by PostgreSQL."""

from django.db import migrations

from tenants.constraints import SameTenantKey, TenantUnique


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0002_consent_events"),
    ]

    operations = [
        TenantUnique("contact"),
        TenantUnique("item"),
        SameTenantKey("interaction", "contact"),
        SameTenantKey("interaction", "item"),
        SameTenantKey("consentevent", "contact"),
    ]
