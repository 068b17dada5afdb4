"""python manage.py personalize_sync --tenant SLUG [--use]"""

from django.core.management.base import BaseCommand, CommandError

from recommendations.personalize import PersonalizeError
from recommendations.personalize_training import personalize_sync
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Export the tenant's users, items and interactions to S3 and bring its Amazon Personalize dataset group, "
        "imports, 'Top picks for you' recommender and exclude-seen filter up to date. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--use", action="store_true", help="switch the tenant to the Personalize recommender")
        parser.add_argument("--poll-seconds", type=float, default=30.0, help="how often to check progress")
        parser.add_argument("--timeout-minutes", type=float, default=240.0, help="give up waiting after this long")

    def handle(self, *args, tenant, use, poll_seconds, timeout_minutes, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant {tenant!r}")
        self.stdout.write(f"{tenant_obj.slug}: syncing with Amazon Personalize")
        try:
            report = personalize_sync(
                tenant=tenant_obj, progress=self.stdout.write, poll_seconds=poll_seconds,
                timeout_seconds=timeout_minutes * 60,
            )  # fmt: skip
        except PersonalizeError as exc:
            raise CommandError(str(exc)) from exc
        imported = ", ".join(f"{rows} {kind.lower()}" for kind, rows in report.imported.items()) or "nothing new"
        self.stdout.write(f"{tenant_obj.slug}: imported {imported}; filter {report.filter_arn}")
        if use:
            tenant_obj.recommender = "personalize"
            tenant_obj.save(update_fields=["recommender"])
            self.stdout.write(f"{tenant_obj.slug}: now recommends with Personalize")
