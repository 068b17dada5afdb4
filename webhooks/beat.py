"""Periodic jobs of webhooks (saas/celery.py reads this while Django starts: no models here)."""

from celery.schedules import schedule

SWEEP_SECONDS = 30
BEAT_SCHEDULE = {
    "webhooks-deliveries-due": {
        "task": "webhooks.tasks.webhooks_due",
        "schedule": schedule(SWEEP_SECONDS),
        "options": {"expires": SWEEP_SECONDS - 5, "expire_seconds": SWEEP_SECONDS - 5},
    },
}
