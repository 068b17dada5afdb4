"""gunicorn's settings, read from the working directory by `gunicorn saas.wsgi:application`: its worker timeout is
the project's request timeout, which the Idempotency-Key lease outlasts (saas/settings.py)."""

from saas.settings import REQUEST_TIMEOUT_SECONDS

timeout = REQUEST_TIMEOUT_SECONDS
