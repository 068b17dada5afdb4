"""Interactions' contact and item are rows of the interaction's own tenant, checked by PostgreSQL."""

from django.db import migrations

from tenants.constraints import SameTenantKey, TenantUnique


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0001_initial"),
    ]

    operations = [
        TenantUnique("contact"),
        TenantUnique("item"),
        SameTenantKey("interaction", "contact"),
        SameTenantKey("interaction", "item"),
    ]
