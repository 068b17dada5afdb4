"""python manage.py demo [--contacts N]: the whole job on the embedded defaults, start to finish."""

import secrets
import sys
import threading
import time
from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.models import Max

from campaigns import sending, services
from campaigns.models import ACTIVE_RUN_STATUSES, Campaign, CampaignRun, EmailStatus, GeneratedEmail
from campaigns.progress import watch_run
from datasets.models import Contact
from datasets.services import dataset_seed_synthetic
from recommendations.services import recommender_train
from routing.gateway import route_for
from tenants.models import Role
from tenants.scoping import tenant_scope
from tenants.services import membership_add, tenant_create

# Where the demo's run is reviewed (the review desk) and its figures shown (the dashboard), under `make web`.
DESK_URL = "http://127.0.0.1:8000/admin/campaigns/generatedemail/desk/?run={run}"
DASHBOARD_URL = "http://127.0.0.1:8000/admin/?run={run}"

TENANT = {"slug": "demo", "name": "Streamly (demo)", "plan": "basic", "brand_name": "Streamly",
          "sender_name": "Sam", "sender_email": "hello@streamly.example",
          "postal_address": "Streamly Inc., 1 Demo Street, Springfield"}  # fmt: skip


class Command(BaseCommand):
    help = "Create a demo tenant from synthetic data and run a campaign through every stage."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=5, help="how many contacts to write to (default 5)")
        parser.add_argument("--send", type=int, default=3, help="how many drafts to approve and send (default 3)")

    def handle(self, *args, contacts, send, **options):
        if contacts < 1:
            raise CommandError("--contacts must be at least 1")
        out = self.stdout
        tenant = tenant_create(**TENANT)
        password = secrets.token_urlsafe(9)
        membership_add(tenant=tenant, username="demo", role=Role.OWNER, password=password)
        with tenant_scope(tenant):
            self._seed(tenant)
            route = route_for(tenant=tenant, task="marketing_email")
            out.write(f"3/5 Model: {route.model_key} ({route.reason})")
            if route.model_key.startswith("local/"):
                self._prepare_local_model()
                # The local model writes one email at a time: chunks of one let the progress bar move per email.
                settings.CAMPAIGN_CHUNK_SIZE = 1
            campaign, _ = Campaign.objects.for_tenant(tenant).get_or_create(
                tenant=tenant, name="Top picks for you", defaults={"goal": "pick something great for this weekend"}
            )
            out.write(f"4/5 Campaign {campaign.name!r}: writing {contacts} emails")
            started = time.monotonic()
            run = self._launch_and_watch(campaign, contacts)
            seconds = time.monotonic() - started
            sent = self._review_and_send(run, send)
            self._report(tenant, run, seconds, sent, password)

    def _seed(self, tenant):
        if Contact.objects.for_tenant(tenant).exists():
            self.stdout.write("1/5 Demo data: already imported")
        else:
            self.stdout.write("1/5 Demo data: generating a synthetic video-on-demand catalog and importing it")
            for report in dataset_seed_synthetic(tenant=tenant, directory=settings.VAR_DIR / "demo"):
                self.stdout.write(f"    {report.summary()}")
        model = recommender_train(tenant=tenant)
        self.stdout.write(f"2/5 Recommender trained: {model}")

    def _prepare_local_model(self):
        from routing.localmodel import ensure_model

        ensure_model(str(settings.LOCAL_MODEL_PATH))

    def _launch_and_watch(self, campaign, contacts):
        """On the embedded defaults the tasks run inside launch; a thread launches while this one shows progress."""
        runs = CampaignRun.objects.for_tenant(campaign.tenant).filter(campaign=campaign)
        stale = [services.run_cancel(run=run) for run in runs.filter(status__in=ACTIVE_RUN_STATUSES)]
        if any(stale):
            self.stdout.write("    (cancelled the run of an interrupted earlier demo)")
        before = runs.aggregate(m=Max("pk"))["m"] or 0
        errors = []

        def work():
            try:
                services.campaign_launch(campaign=campaign, limit=contacts)
            except Exception as exc:  # reported below by the main thread
                errors.append(exc)
            finally:
                connections.close_all()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        while not errors and not runs.filter(pk__gt=before).exists():
            time.sleep(0.2)
        if errors:
            worker.join()
            raise CommandError(f"{errors[0]}. If a run is still active, wait for it or cancel it in the admin.")
        run = watch_run(runs.filter(pk__gt=before).get(), self.stdout, interval=0.5)
        worker.join()
        if errors:
            raise CommandError(f"the run failed: {errors[0]}")
        return run

    def _review_and_send(self, run, count) -> list[GeneratedEmail]:
        drafts = GeneratedEmail.objects.for_tenant(run.tenant).filter(run=run, status=EmailStatus.DRAFT).order_by("pk")
        sent = []
        for email in drafts.select_related("contact", "tenant")[:count]:
            email.approve(by="demo")
            if sending.email_send(email=email) == EmailStatus.SENT:
                sent.append(email)
        return sent

    def _report(self, tenant, run, seconds, sent, password):
        out = self.stdout
        emails = list(
            GeneratedEmail.objects.for_tenant(tenant).filter(run=run).select_related("contact").order_by("pk")
        )
        first = next((e for e in emails if e.subject), None)
        out.write("5/5 Reviewed and sent\n")
        if first:
            out.write("=" * 78)
            out.write(
                f"To: {first.contact.full_name} <{first.contact.email}>  (favorite genre: {first.favorite_genre or '-'})"
            )
            out.write(f"Recommended: {', '.join(i['title'] for i in first.items)}")
            out.write(f"Subject: {first.subject}\n")
            out.write(first.body)
            out.write("=" * 78)
        statuses = Counter(e.status for e in emails)
        tokens_in, tokens_out = sum(e.input_tokens for e in emails), sum(e.output_tokens for e in emails)
        model_ms = sum(e.latency_ms for e in emails)
        out.write(f"Contacts: {run.total}   emails: {len(emails)}   by status: {dict(statuses)}")
        out.write(
            f"Tokens: {tokens_in} in, {tokens_out} out   cost: ${run.cost_usd:.6f}   model: {emails[0].model_key if emails else '-'}"
        )
        if emails:
            per_email = seconds / len(emails)
            speed = tokens_out / (model_ms / 1000) if model_ms else 0
            out.write(f"Time: {seconds:.1f}s in all, {per_email:.1f}s per email, {speed:.1f} output tokens/s")
        for email in emails:
            if email.status == EmailStatus.FAILED:
                out.write(f"  failed for {email.contact.external_id}: {email.failure_reason[:200]}")
        out.write(f"Sent {len(sent)} email(s) to {settings.EMAIL_FILE_PATH}/")
        out.write(f"\nThe run's figures, on the dashboard: {DASHBOARD_URL.format(run=run.pk)}")
        out.write(
            "Review the rest at the desk (make web, then open):\n"
            f"  {DESK_URL.format(run=run.pk)}\n"
            f"  user: demo   password: {password}   (a new password is set on every demo run)"
        )
        sys.stdout.flush()
