"""Claiming rows for one task at a time: a token in a claim column and a lease in its `…_until` column, taken by one
conditional UPDATE, so two tasks given the same rows (a message delivered twice, two chunks sharing an item) work
on each once. A claim whose lease ran out (its worker died) is free again; a lease is as long as a task may live."""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone


def lease_until(now: datetime) -> datetime:
    """When a claim taken `now` runs out: no task outlives Celery's hard time limit (and a minute's slack)."""
    return now + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def rows_claim(rows: QuerySet, *, field: str, token: str = "") -> str:
    """Claim the rows of `rows` that are free (`field` blank, or its lease `field`_until unset or run out) or
    already `token`'s (a task delivered again taking its own claims back); returns the token (a new one when none
    is given). Read the claimed rows back with `.filter(**{field: token})`."""
    token, now, until = token or uuid.uuid4().hex, timezone.now(), f"{field}ed_until"
    free = Q(**{field: ""}) | Q(**{field: token}) | Q(**{f"{until}__isnull": True}) | Q(**{f"{until}__lt": now})
    rows.filter(free).update(**{field: token, until: lease_until(now)})
    return token


def claims_release(rows: QuerySet, *, field: str, token: str) -> None:
    """Give back what `token` still holds of `rows`."""
    rows.filter(**{field: token}).update(**{field: "", f"{field}ed_until": None})
