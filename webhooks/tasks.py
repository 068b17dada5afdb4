from celery import shared_task

from webhooks import services


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def webhook_deliver(delivery_id: int) -> str:
    """One attempt at a delivery (services.deliver claims it, so a task delivered twice posts once)."""
    return services.deliver(delivery_id)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def webhooks_due() -> int:
    """Beat's sweep: retries that are due, and attempts whose worker stopped."""
    return services.deliveries_due()
