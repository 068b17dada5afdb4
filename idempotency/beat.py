"""Periodic jobs of idempotency (saas/celery.py reads this while Django starts: no models here)."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "idempotency-keys-expire": {
        "task": "idempotency.tasks.idempotency_keys_expire",
        "schedule": crontab(minute=17),
        "options": {"expires": 3000, "expire_seconds": 3000},
    },
}
