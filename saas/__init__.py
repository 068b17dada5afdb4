"""Project package: settings, URLs and the Celery app."""

from saas.celery import app as celery_app

__all__ = ["celery_app"]
