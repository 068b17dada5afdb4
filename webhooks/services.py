"""Webhooks: what the product emits, and how each delivery reaches the tenant's endpoint.

`emit` stores one delivery per endpoint that wants the event (after the change it reports commits) and queues
its first attempt. An attempt is claimed (a conditional UPDATE, so two workers never post the same attempt),
signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 of
"id.timestamp.body" with the endpoint's secret), posted with a timeout and no redirects, and logged with its
status and latency. A failure is tried again on WEBHOOK_RETRY_SCHEDULE (seconds, with ±20 % jitter); the last
failure leaves the delivery failed. An endpoint failing for longer than WEBHOOK_DISABLE_AFTER_SECONDS (and at least
WEBHOOK_DISABLE_MIN_FAILURES attempts in a row) is disabled, and the tenant's owners are told why.

Deliveries are at least once: a worker that dies mid-attempt leaves a claim the sweep hands out again, so a
receiver may see a webhook-id twice and should keep the ids it has handled."""

import ipaddress
import json
import logging
import random
import socket
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

from webhooks.models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

USER_AGENT = "CampaignEmail-Webhooks/1"


# --- emitting ---------------------------------------------------------------------------------------------------


def endpoints_wanting(tenant_id: int, event_type: str) -> list[WebhookEndpoint]:
    """The tenant's enabled endpoints that want this event: one small query, nothing more when there are none."""
    endpoints = WebhookEndpoint.objects.for_tenant(tenant_id).filter(enabled=True)
    return [endpoint for endpoint in endpoints if endpoint.wants(event_type)]


def emit(tenant_id: int, event_type: str, items: list[dict]) -> list[int]:
    """One event per item in `items` (the event's data), to every endpoint that wants it; delivered once the
    current transaction commits. Returns the deliveries' ids."""
    endpoints = endpoints_wanting(tenant_id, event_type)
    if not endpoints or not items:
        return []
    now = timezone.now()
    deliveries = [
        WebhookDelivery(
            tenant_id=tenant_id, endpoint=endpoint, event_type=event_type, message_id=f"msg_{uuid.uuid4().hex}",
            payload={"type": event_type, "timestamp": now.isoformat(), "data": data}, next_attempt_at=now,
        )
        for endpoint in endpoints
        for data in items
    ]  # fmt: skip
    WebhookDelivery.objects.for_tenant(tenant_id).bulk_create(deliveries, batch_size=1000)
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _queue(ids))
    return ids


def _queue(ids: list[int], countdown: float = 0) -> None:
    from webhooks.tasks import webhook_deliver

    for pk in ids:
        try:
            webhook_deliver.apply_async((pk,), countdown=countdown)
        except Exception as exc:  # the broker is down: the sweep sends it once it is back
            log.warning("webhook delivery %s not queued (%s); the sweep will send it", pk, exc)


# --- delivering -------------------------------------------------------------------------------------------------


class UnsafeURL(ValueError):
    """An endpoint the platform must not post to (not https, or an address inside our own network)."""


def url_problem(url: str) -> str:
    """Why the platform will not post to this URL ("" when it will), checked when it is registered."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "the URL must be an absolute https:// URL"
    if parts.scheme != "https" and not settings.WEBHOOK_ALLOW_PRIVATE:
        return "the URL must use https"
    return ""


def _check_address(url: str) -> None:
    """Refuse to post into private, loopback or link-local networks (the cloud metadata service among them),
    checked on the address the name resolves to now, unless WEBHOOK_ALLOW_PRIVATE (local development, tests)."""
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        raise UnsafeURL(f"cannot resolve {host}: {exc}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise UnsafeURL(f"{host} resolves to {ip}, inside a private network: refused")


def deliver(delivery_id: int) -> str:
    """One attempt at a delivery, if it is due and no other worker has it. Returns its status afterwards."""
    now = timezone.now()
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    claimable = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, claimed_at__lt=now - lease
    )
    rows = WebhookDelivery.dangerously_unscoped.filter(claimable, pk=delivery_id)
    if not rows.update(status=DeliveryStatus.SENDING, claimed_at=now):
        found = WebhookDelivery.dangerously_unscoped.filter(pk=delivery_id).values_list("status", flat=True).first()
        return found or "gone"
    delivery = WebhookDelivery.dangerously_unscoped.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        _update(delivery, status=DeliveryStatus.FAILED, last_error="the endpoint is disabled")
        return DeliveryStatus.FAILED
    code, error, latency = _post(endpoint, delivery)
    WebhookAttempt.objects.for_tenant(delivery.tenant_id).create(
        tenant_id=delivery.tenant_id, delivery=delivery, status_code=code, latency_ms=latency, error=error[:500]
    )
    attempts = delivery.attempts + 1
    if code is not None and 200 <= code < 300:
        _update(delivery, status=DeliveryStatus.SUCCEEDED, attempts=attempts, last_status_code=code, last_error="",
                delivered_at=timezone.now())  # fmt: skip
        WebhookEndpoint.dangerously_unscoped.filter(pk=endpoint.pk).update(consecutive_failures=0, failing_since=None)
        return DeliveryStatus.SUCCEEDED
    said = error or f"the endpoint answered {code}"
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        _update(delivery, status=DeliveryStatus.FAILED, attempts=attempts, last_status_code=code,
                last_error=f"gave up after {attempts} attempts: {said}"[:500])  # fmt: skip
    else:
        wait = schedule[attempts - 1] * random.uniform(0.8, 1.2)
        _update(delivery, status=DeliveryStatus.PENDING, attempts=attempts, last_status_code=code,
                last_error=said[:500], next_attempt_at=timezone.now() + timedelta(seconds=wait))  # fmt: skip
        if wait < settings.WEBHOOK_QUEUE_RETRY_BELOW_SECONDS:  # longer waits: the sweep (no long ETAs on Redis)
            transaction.on_commit(lambda: _queue([delivery.pk], countdown=wait))
    _endpoint_failed(endpoint, said)
    return WebhookDelivery.dangerously_unscoped.values_list("status", flat=True).get(pk=delivery.pk)


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str, int]:
    """(status code or None, what went wrong, latency in ms)."""
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    moment = timezone.now()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(endpoint.secret).sign(delivery.message_id, moment, body),
    }
    started = time.monotonic()
    try:
        _check_address(endpoint.url)
        answer = requests.post(
            endpoint.url, data=body.encode(), headers=headers, allow_redirects=False,
            timeout=(min(5, settings.WEBHOOK_TIMEOUT_SECONDS), settings.WEBHOOK_TIMEOUT_SECONDS),
        )  # fmt: skip
    except UnsafeURL as exc:
        return None, str(exc), 0
    except requests.RequestException as exc:
        return None, _failure(exc, endpoint.url), int((time.monotonic() - started) * 1000)
    latency = int((time.monotonic() - started) * 1000)
    error = "" if 200 <= answer.status_code < 300 else f"the endpoint answered {answer.status_code}"
    return answer.status_code, error, latency


def _failure(exc: requests.RequestException, url: str) -> str:
    """What went wrong, in the words a developer fixing the endpoint needs (requests' own messages run long)."""
    host = urlsplit(url).hostname
    said = str(exc)
    if isinstance(exc, requests.Timeout):
        return f"no answer from {host} within {settings.WEBHOOK_TIMEOUT_SECONDS} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"the TLS handshake with {host} failed (certificate?): {said[-200:]}"
    if isinstance(exc, requests.ConnectionError):
        if "resolve" in said or "Name or service not known" in said or "nodename" in said:
            return f"could not connect to {host}: the name does not resolve"
        if "refused" in said.lower():
            return f"could not connect to {host}: connection refused"
        return f"could not connect to {host}: {said[-200:]}"
    return f"{type(exc).__name__}: {said}"[:500]


def _update(delivery: WebhookDelivery, **changes) -> None:
    WebhookDelivery.dangerously_unscoped.filter(pk=delivery.pk).update(**changes)


def _endpoint_failed(endpoint: WebhookEndpoint, said: str) -> None:
    """Count the failure; an endpoint failing long enough is disabled and its tenant's owners are told."""
    now = timezone.now()
    rows = WebhookEndpoint.dangerously_unscoped.filter(pk=endpoint.pk)
    rows.filter(failing_since__isnull=True).update(failing_since=now)
    rows.update(consecutive_failures=F("consecutive_failures") + 1)
    current = rows.values("consecutive_failures", "failing_since", "enabled").get()
    long_enough = now - current["failing_since"] >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    if not (
        current["enabled"] and long_enough and current["consecutive_failures"] >= settings.WEBHOOK_DISABLE_MIN_FAILURES
    ):
        return
    reason = (f"disabled {now:%Y-%m-%d %H:%M} UTC after {current['consecutive_failures']} failed attempts in a row "
              f"since {current['failing_since']:%Y-%m-%d %H:%M} UTC; the last: {said}")[:500]  # fmt: skip
    if not rows.filter(enabled=True).update(enabled=False, disabled_reason=reason):
        return  # another worker disabled it a moment ago, and told the owners
    WebhookDelivery.dangerously_unscoped.filter(endpoint_id=endpoint.pk, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, last_error="the endpoint was disabled"
    )
    _tell_owners(endpoint, reason)


def _tell_owners(endpoint: WebhookEndpoint, reason: str) -> None:
    from tenants.models import Membership, Role

    owners = Membership.objects.filter(tenant_id=endpoint.tenant_id, role=Role.OWNER).select_related("user")
    addresses = sorted({m.user.email for m in owners if m.user.email})
    if not addresses:
        return
    try:
        send_mail(
            subject=f"Webhook endpoint disabled: {endpoint.url}"[:200],
            message=f"Your webhook endpoint {endpoint.url} was {reason}.\n\nFix the endpoint, then enable it again "
            f"(POST /api/v1/webhooks/{endpoint.pk}/enable/ or the admin); deliveries made meanwhile are listed "
            "under its deliveries.",
            from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=addresses,
        )  # fmt: skip
    except Exception as exc:  # the notice is a courtesy: the endpoint stays disabled with its reason
        log.warning(
            "telling the owners of tenant %s about endpoint %s failed: %s", endpoint.tenant_id, endpoint.pk, exc
        )


def deliveries_due(limit: int = 1000) -> int:
    """The sweep: deliveries whose next attempt is due, and claims whose worker stopped, are queued again."""
    now = timezone.now()
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    due = WebhookDelivery.dangerously_unscoped.filter(
        Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.SENDING, claimed_at__lt=now - lease)
    ).order_by("next_attempt_at")
    ids = list(due.values_list("pk", flat=True)[:limit])
    _queue(ids)
    return len(ids)


def endpoint_enable(endpoint: WebhookEndpoint) -> None:
    WebhookEndpoint.dangerously_unscoped.filter(pk=endpoint.pk).update(
        enabled=True, disabled_reason="", consecutive_failures=0, failing_since=None
    )
    endpoint.refresh_from_db()


def endpoint_ping(endpoint: WebhookEndpoint) -> WebhookDelivery:
    now = timezone.now()
    delivery = WebhookDelivery.objects.for_tenant(endpoint.tenant_id).create(
        tenant_id=endpoint.tenant_id, endpoint=endpoint, event_type=EventType.PING,
        message_id=f"msg_{uuid.uuid4().hex}", next_attempt_at=now,
        payload={"type": EventType.PING, "timestamp": now.isoformat(), "data": {"endpoint_id": endpoint.pk}},
    )  # fmt: skip
    transaction.on_commit(lambda: _queue([delivery.pk]))
    return delivery
