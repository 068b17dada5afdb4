"""python manage.py import_dataset --tenant SLUG [--users F] [--items F] [--interactions F]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.importers import import_interactions, import_items, import_users
from tenants.models import Tenant

SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = "Import contacts, items and interactions from CSV files in Amazon Personalize's bulk format."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--users", type=Path, help="CSV: USER_ID,EMAIL[,FIRST_NAME,LAST_NAME,AGE,GENDER,LOCALE]")
        parser.add_argument("--items", type=Path, help="CSV: ITEM_ID,TITLE[,YEAR,GENRES,PLOT,…]")
        parser.add_argument("--interactions", type=Path, help="CSV: USER_ID,ITEM_ID,TIMESTAMP[,EVENT_TYPE]")

    def handle(self, *args, tenant, users, items, interactions, **options):
        try:
            tenant_obj = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(
                f"No tenant {tenant!r}; existing: {', '.join(Tenant.objects.values_list('slug', flat=True))}"
            ) from None
        if not (users or items or interactions):
            raise CommandError("Nothing to import: give at least one of --users, --items, --interactions")
        # Order matters: interactions refer to users and items.
        for path, importer in ((users, import_users), (items, import_items), (interactions, import_interactions)):
            if path is None:
                continue
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            report = importer(path, tenant=tenant_obj)
            self.stdout.write(f"{path.name}: {report.summary()}")
            for line, reason in report.errors[:SHOWN_ERRORS]:
                self.stdout.write(f"  line {line}: {reason}")
            if len(report.errors) > SHOWN_ERRORS:
                self.stdout.write(f"  … and {len(report.errors) - SHOWN_ERRORS} more rejected rows")
