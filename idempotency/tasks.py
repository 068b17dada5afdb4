from celery import shared_task

from idempotency.claims import keys_expire


@shared_task(time_limit=300, soft_time_limit=290)
def idempotency_keys_expire() -> int:
    """Beat's hourly sweep of the API's Idempotency-Keys past their time to live."""
    return keys_expire()
