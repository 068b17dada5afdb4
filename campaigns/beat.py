"""Periodic jobs of campaigns, declared in code (saas/celery.py reads this while Django starts: no models here)."""

from datetime import timedelta

from celery.schedules import schedule

SWEEP = timedelta(minutes=5)
EXPIRES = int(SWEEP.total_seconds()) - 60  # a sweep still queued when the next is due is stale: skip it
BEAT_SCHEDULE = {
    "campaigns-expire-send-claims": {
        "task": "campaigns.tasks.email_claims_expire",
        "schedule": schedule(SWEEP),
        # `expires` for Celery's own schedulers; django-celery-beat's DatabaseScheduler reads `expire_seconds`.
        "options": {"expires": EXPIRES, "expire_seconds": EXPIRES},
    },
}
