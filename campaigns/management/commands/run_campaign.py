"""python manage.py run_campaign --tenant SLUG --campaign NAME [--limit N] [--wait]"""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from campaigns import services
from campaigns.models import Campaign, GeneratedEmail
from campaigns.progress import watch_run
from tenants.models import Tenant
from tenants.scoping import tenant_scope


class Command(BaseCommand):
    help = "Launch a run of a campaign; with --wait, show its progress and a summary when it ends."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--campaign", required=True, help="campaign name")
        parser.add_argument("--limit", type=int, help="write to at most this many contacts")
        parser.add_argument("--wait", action="store_true", help="follow the run until it finishes")

    def handle(self, *args, tenant, campaign, limit, wait, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant {tenant!r}")
        with tenant_scope(tenant_obj):
            campaign_obj = Campaign.objects.filter(name=campaign).first()
            if campaign_obj is None:
                names = ", ".join(Campaign.objects.values_list("name", flat=True)) or "none yet"
                raise CommandError(f"No campaign {campaign!r} in {tenant}; its campaigns: {names}")
            try:
                run = services.campaign_launch(campaign=campaign_obj, limit=limit)
            except services.CampaignError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"run #{run.pk} queued for {run.total} contacts")
            if wait:
                self._summary(watch_run(run, self.stdout))

    def _summary(self, run):
        statuses = Counter(GeneratedEmail.objects.filter(run=run).values_list("status", flat=True))
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else 0
        self.stdout.write(f"run #{run.pk} {run.status}: {dict(statuses)}")
        self.stdout.write(
            f"tokens {run.input_tokens} in / {run.output_tokens} out, cost ${run.cost_usd:.4f}, "
            f"{seconds:.1f} s, {run.rate_per_s:.1f} emails/s"
        )
        if run.error:
            self.stdout.write(f"last error: {run.error}")
