"""Periodic jobs of campaigns, declared in code (saas/celery.py reads this while Django starts: no models here)."""

from datetime import timedelta

from celery.schedules import schedule

SWEEP = timedelta(minutes=5)
EXPIRES = int(SWEEP.total_seconds()) - 60  # a sweep still queued when the next is due is stale: skip it
DUE = timedelta(minutes=1)  # how late an email may go after its send window opens or its wait ends
DUE_EXPIRES = int(DUE.total_seconds()) - 10
BEAT_SCHEDULE = {
    "campaigns-expire-send-claims": {
        "task": "campaigns.tasks.email_claims_expire",
        "schedule": schedule(SWEEP),
        # `expires` for Celery's own schedulers; django-celery-beat's DatabaseScheduler reads `expire_seconds`.
        "options": {"expires": EXPIRES, "expire_seconds": EXPIRES},
    },
    "campaigns-send-due-emails": {
        "task": "campaigns.tasks.emails_send_due",
        "schedule": schedule(DUE),
        "options": {"expires": DUE_EXPIRES, "expire_seconds": DUE_EXPIRES},
    },
}
