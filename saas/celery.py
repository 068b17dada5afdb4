"""The Celery app: configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

app = Celery("saas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic jobs declared in code (with expiry); marketers' campaign schedules live in the database scheduler.
from campaigns.beat import BEAT_SCHEDULE as CAMPAIGNS_BEAT  # noqa: E402
from idempotency.beat import BEAT_SCHEDULE as IDEMPOTENCY_BEAT  # noqa: E402
from recommendations.tasks import BEAT_SCHEDULE as RECOMMENDATIONS_BEAT  # noqa: E402
from webhooks.beat import BEAT_SCHEDULE as WEBHOOKS_BEAT  # noqa: E402

app.conf.beat_schedule = {**CAMPAIGNS_BEAT, **IDEMPOTENCY_BEAT, **RECOMMENDATIONS_BEAT, **WEBHOOKS_BEAT}
