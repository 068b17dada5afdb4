"""python manage.py train_recommender --tenant SLUG"""

from django.core.management.base import BaseCommand, CommandError

from recommendations.services import recommender_train
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Train a new version of the tenant's embedded recommender on all its interactions."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)

    def handle(self, *args, tenant, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant {tenant!r}")
        try:
            model = recommender_train(tenant=tenant_obj)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{tenant_obj.slug}: recommender {model}")
