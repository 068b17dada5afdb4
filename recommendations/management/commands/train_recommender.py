"""python manage.py train_recommender --tenant SLUG"""

from django.core.management.base import BaseCommand, CommandError

from recommendations.services import recommender_train
from tenants.models import Tenant
from tenants.scoping import tenant_scope


class Command(BaseCommand):
    help = "Train a new version of the tenant's embedded recommender on all its interactions."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)

    def handle(self, *args, tenant, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant {tenant!r}")
        try:
            with tenant_scope(tenant_obj):
                model = recommender_train(tenant=tenant_obj)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        chosen = {
            k: model.params[k] for k in ("event_weights", "l2", "history_half_life", "next_weight", "genre_weight")
        }
        self.stdout.write(f"{tenant_obj.slug}: recommender {model} (settings: {chosen})")
