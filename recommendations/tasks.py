"""Celery entry points for the embedded recommender: retrain one tenant, and the nightly sweep that finds the
tenants whose data changed.

saas/celery.py reads BEAT_SCHEDULE while Django is still starting, so the services are imported inside the
task bodies, once the apps are ready.
"""

from celery import shared_task
from celery.schedules import crontab

EXPIRES = 4 * 3600  # a sweep that waited this long in the queue is stale: tomorrow's will find the same tenants
BEAT_SCHEDULE = {
    "recommendations-nightly-retrain": {
        "task": "recommendations.tasks.retrain_changed",
        "schedule": crontab(hour=2, minute=30),
        # `expires` for Celery's own schedulers; django-celery-beat's DatabaseScheduler reads `expire_seconds`.
        "options": {"expires": EXPIRES, "expire_seconds": EXPIRES},
    },
}
RETRY = {
    "autoretry_for": (ConnectionError, TimeoutError),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 3,
}


@shared_task(acks_late=True, time_limit=1800, soft_time_limit=1780, **RETRY)
def retrain(tenant_id: int, only_if_changed: bool = True) -> int | None:
    """Train a new version for the tenant; the version number, or None when nothing changed since the last."""
    from recommendations.services import recommender_needs_training, recommender_train
    from tenants.models import Tenant
    from tenants.scoping import tenant_scope

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        if only_if_changed and not recommender_needs_training(tenant=tenant):
            return None  # another run (or the command) got there first
        return recommender_train(tenant=tenant).version


@shared_task(acks_late=True, time_limit=300)
def retrain_changed() -> list[int]:
    """Queue a retraining for every tenant whose data changed; returns their ids."""
    from recommendations.services import tenants_needing_training

    tenant_ids = [tenant.pk for tenant in tenants_needing_training()]
    for tenant_id in tenant_ids:
        retrain.delay(tenant_id)
    return tenant_ids
