"""Webhooks, as a CRM developer relies on them: register an endpoint (its secret shown once), get every event
signed the Standard Webhooks way — verified here by the svix library's own verifier — from a real HTTP server on
loopback; failures are retried with backoff, logged with status and latency, and an endpoint that keeps failing is
disabled with a notice. Another tenant's endpoints are theirs."""

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from svix.webhooks import Webhook as SvixWebhook

from campaigns import sending
from campaigns.models import EmailStatus, GeneratedEmail
from datasets.consent import contact_unsubscribe
from datasets.models import ConsentSource
from tenants.models import Role
from tenants.services import membership_add
from tests.test_sending import approved_run, contact
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

API = "/api/v1/webhooks/"


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0]
    settings.WEBHOOK_ALLOW_PRIVATE = True


def register(api, url, **extra) -> dict:
    answer = api.post(API, {"url": url, **extra}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def verified(received, secret) -> dict:
    """The payload, if svix's verifier accepts the delivery's signature (it raises otherwise)."""
    headers = {name: received.headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    SvixWebhook(secret).verify(received.body, headers)
    return json.loads(received.body)


def deliver_all(tenant) -> list[str]:
    return [
        services.deliver(pk)
        for pk in WebhookDelivery.objects.for_tenant(tenant).order_by("pk").values_list("pk", flat=True)
    ]


def test_an_endpoint_is_registered_and_its_secret_shown_once(owner_api, reviewer_api, receiver):
    created = register(owner_api, receiver.url, events=["email.sent", "email.approved", "email.sent"])
    assert created["secret"].startswith("whsec_") and created["events"] == ["email.approved", "email.sent"]
    shown = owner_api.get(f"{API}{created['id']}/").json()
    assert "secret" not in shown and shown["secret_hint"] == created["secret"][:10] + "…"
    assert created["secret"] not in owner_api.get(API).content.decode()
    rotated = owner_api.post(f"{API}{created['id']}/rotate-secret/").json()["secret"]
    assert rotated != created["secret"] and WebhookEndpoint.dangerously_unscoped.get().secret == rotated
    # A reviewer reads, never registers; bad input is a precise 400.
    assert reviewer_api.get(API).status_code == 200
    assert reviewer_api.post(API, {"url": receiver.url}, format="json").status_code == 403
    bad = owner_api.post(API, {"url": "ftp://example.com/x", "events": ["email.exploded"]}, format="json").json()
    assert "absolute https" in json.dumps(bad) and "email.exploded" in json.dumps(bad)


def test_approving_and_sending_deliver_signed_events_a_standard_verifier_accepts(
    owner_api, tenant, receiver, smtp_server
):
    secret = register(owner_api, receiver.url)["secret"]
    run = approved_run(tenant, [contact(tenant, 1)])
    GeneratedEmail.dangerously_unscoped.filter(run=run).update(status=EmailStatus.DRAFT)
    email = GeneratedEmail.objects.for_tenant(tenant).select_related("contact", "tenant").get(run=run)
    assert owner_api.post(f"/api/v1/emails/{email.pk}/approve/").status_code == 200
    assert sending.email_send(email=email) == EmailStatus.SENT
    deliver_all(tenant)
    events = [verified(r, secret) for r in receiver.received]
    assert [e["type"] for e in events] == ["email.approved", "email.sent"]
    approved, sent = (e["data"] for e in events)
    assert approved["email_id"] == email.pk and approved["contact_external_id"] == "c1" and approved["run_id"] == run.pk
    assert sent["message_id"] == GeneratedEmail.objects.for_tenant(tenant).get(pk=email.pk).message_id
    # The signature is the spec's: HMAC-SHA256 of "id.timestamp.body" under the secret's bytes, in base64.
    first = receiver.received[0]
    signed = f"{first.headers['webhook-id']}.{first.headers['webhook-timestamp']}.".encode() + first.body
    digest = hmac.new(base64.b64decode(secret.removeprefix("whsec_")), signed, hashlib.sha256).digest()
    assert first.headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    # A tampered body or another endpoint's secret fails verification.
    first = receiver.received[0]
    with pytest.raises(Exception, match="(?i)signature"):
        SvixWebhook(secret).verify(first.body.replace(b"approved", b"rejected"), dict(first.headers))
    with pytest.raises(Exception, match="(?i)signature"):
        verified(first, "whsec_" + "A" * 32)


def test_a_failing_endpoint_is_retried_then_succeeds_with_every_attempt_logged(owner_api, tenant, receiver):
    secret = register(owner_api, receiver.url, events=["contact.unsubscribed"])["secret"]
    receiver.answer(500, 503, 200)
    contact_unsubscribe(contact=contact(tenant, 1), source=ConsentSource.UNSUBSCRIBE_LINK, by="link")
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    assert services.deliver(delivery.pk) == DeliveryStatus.PENDING
    assert services.deliver(delivery.pk) == DeliveryStatus.PENDING
    assert services.deliver(delivery.pk) == DeliveryStatus.SUCCEEDED
    assert services.deliver(delivery.pk) == DeliveryStatus.SUCCEEDED  # a duplicate task posts nothing
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # the same id on every retry
    assert verified(receiver.received[-1], secret)["data"]["contact_external_id"] == "c1"
    attempts = list(WebhookAttempt.objects.for_tenant(tenant).order_by("pk").values_list("status_code", "error"))
    assert attempts == [(500, "the endpoint answered 500"), (503, "the endpoint answered 503"), (200, "")]
    listed = owner_api.get(f"{API}{delivery.endpoint_id}/deliveries/").json()["results"]
    assert listed[0]["status"] == "succeeded" and [a["status_code"] for a in listed[0]["attempt_log"]] == [
        500,
        503,
        200,
    ]
    assert all(a["latency_ms"] >= 0 for a in listed[0]["attempt_log"])


def test_the_wait_between_attempts_follows_the_schedule_with_jitter(owner_api, tenant, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [60, 600]
    register(owner_api, receiver.url)
    receiver.answer(500)
    contact_unsubscribe(contact=contact(tenant, 1), source=ConsentSource.ADMIN, by="x")
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    before = timezone.now()
    assert services.deliver(delivery.pk) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    assert before + timedelta(seconds=47) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=73)
    assert services.deliver(delivery.pk) == DeliveryStatus.PENDING and len(receiver.received) == 1  # not due yet
    WebhookDelivery.dangerously_unscoped.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    services.deliver(delivery.pk)
    WebhookDelivery.dangerously_unscoped.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.deliver(delivery.pk) == DeliveryStatus.FAILED  # 3 attempts: the schedule had two waits
    assert "gave up after 3 attempts" in WebhookDelivery.dangerously_unscoped.get(pk=delivery.pk).last_error


def test_an_endpoint_that_keeps_failing_is_disabled_and_the_owners_told(owner_api, tenant, receiver, settings):
    settings.WEBHOOK_DISABLE_MIN_FAILURES, settings.WEBHOOK_DISABLE_AFTER_SECONDS = 3, 0
    owner = membership_add(tenant=tenant, username="olga", role=Role.OWNER)
    owner.user.email = "olga@acme.example"
    owner.user.save()
    hook = register(owner_api, receiver.url)
    receiver.answer(500)
    for n in range(1, 3):
        contact_unsubscribe(contact=contact(tenant, n), source=ConsentSource.ADMIN, by="x")
    deliver_all(tenant)  # two deliveries, one failed attempt each
    assert WebhookEndpoint.dangerously_unscoped.get().enabled
    deliver_all(tenant)  # the third failure in a row disables it
    endpoint = WebhookEndpoint.dangerously_unscoped.get()
    assert not endpoint.enabled and "3 failed attempts in a row" in endpoint.disabled_reason
    assert set(WebhookDelivery.dangerously_unscoped.values_list("status", flat=True)) == {DeliveryStatus.FAILED}
    (notice,) = mail.outbox
    assert notice.to == ["olga@acme.example"] and receiver.url in notice.subject and "enable" in notice.body
    assert owner_api.post(f"{API}{hook['id']}/ping/").status_code == 409
    enabled = owner_api.post(f"{API}{hook['id']}/enable/").json()
    assert enabled["enabled"] and enabled["consecutive_failures"] == 0
    receiver.answer(200)
    ping = owner_api.post(f"{API}{hook['id']}/ping/")
    assert ping.status_code == 202 and services.deliver(ping.json()["id"]) == DeliveryStatus.SUCCEEDED


def test_private_addresses_are_refused_unless_allowed(owner_api, tenant, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert "must use https" in json.dumps(owner_api.post(API, {"url": receiver.url}, format="json").json())
    WebhookEndpoint.dangerously_unscoped.create(tenant=tenant, url="https://127.0.0.1:9/hooks")
    contact_unsubscribe(contact=contact(tenant, 1), source=ConsentSource.ADMIN, by="x")
    deliver_all(tenant)
    attempt = WebhookAttempt.dangerously_unscoped.get()
    assert attempt.status_code is None and "inside a private network" in attempt.error


def test_a_tenant_without_endpoints_costs_one_query_per_event(tenant, django_assert_num_queries):
    person = contact(tenant, 1)
    from webhooks.events import contacts_unsubscribed

    with django_assert_num_queries(1):
        contacts_unsubscribed(tenant.pk, [person.pk], source="x", at=timezone.now())
    assert not WebhookDelivery.dangerously_unscoped.exists()


def test_events_reach_only_their_own_tenants_endpoints(owner_api, outsider_api, tenant, other_tenant, receiver):
    register(outsider_api, receiver.url)
    contact_unsubscribe(contact=contact(tenant, 1), source=ConsentSource.ADMIN, by="x")
    assert not WebhookDelivery.dangerously_unscoped.exists()
    theirs = WebhookEndpoint.dangerously_unscoped.get(tenant=other_tenant)
    for method, path in (("get", ""), ("get", "deliveries/"), ("post", "ping/"), ("post", "enable/"),
                         ("post", "rotate-secret/"), ("delete", "")):  # fmt: skip
        assert getattr(owner_api, method)(f"{API}{theirs.pk}/{path}").status_code == 404
    assert WebhookEndpoint.dangerously_unscoped.get(pk=theirs.pk).secret == theirs.secret


@pytest.mark.worker
def test_a_real_worker_retries_with_backoff_until_the_endpoint_answers(start_worker, tenant, receiver):
    """Celery delivers: a receiver that fails twice then succeeds gets the same webhook three times, spaced by the
    schedule (1 s, ±20 % jitter), and the delivery ends succeeded with its three attempts logged."""
    from tests.workers import wait_for

    worker = start_worker(WEBHOOK_RETRY_SCHEDULE="1,1", WEBHOOK_ALLOW_PRIVATE="1")
    WebhookEndpoint.dangerously_unscoped.create(tenant=tenant, url=receiver.url)
    receiver.answer(500, 502, 204)
    contact_unsubscribe(contact=contact(tenant, 1), source=ConsentSource.UNSUBSCRIBE_LINK, by="link")
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    wait_for(lambda: WebhookDelivery.dangerously_unscoped.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED,
             timeout=60, worker=worker, what="the delivery to succeed")  # fmt: skip
    attempts = list(WebhookAttempt.objects.for_tenant(tenant).order_by("at"))
    assert [a.status_code for a in attempts] == [500, 502, 204] and len(receiver.received) == 3
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    assert all(gap >= 0.75 for gap in gaps), gaps


def test_an_unreachable_endpoint_is_logged_in_words_a_developer_can_act_on(tenant, receiver):
    """Not requests' 300-character repr: which host, and whether it refused or does not exist."""
    port = receiver.server.server_address[1]
    receiver.close()  # nothing listens there any more
    WebhookEndpoint.dangerously_unscoped.create(tenant=tenant, url=f"http://127.0.0.1:{port}/hooks")
    WebhookEndpoint.dangerously_unscoped.create(tenant=tenant, url="https://no-such-host.invalid/hooks")
    contact_unsubscribe(contact=contact(tenant, 1), source=ConsentSource.ADMIN, by="x")
    deliver_all(tenant)
    errors = sorted(WebhookAttempt.dangerously_unscoped.values_list("error", flat=True))
    assert errors == ["could not connect to 127.0.0.1: connection refused",
                      "could not connect to no-such-host.invalid: the name does not resolve"]  # fmt: skip


def test_a_marketer_picks_an_endpoints_events_by_ticking_them_in_the_admin(tenant):
    from django.test import Client

    membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123")
    client = Client()
    client.login(username="rita", password="pw-rita-123")
    add = "/admin/webhooks/webhookendpoint/add/"
    page = client.get(add).content.decode()
    assert 'type="checkbox" name="events" value="email.sent"' in page and "webhook.ping" not in page
    form = {"tenant": tenant.pk, "url": "https://crm.example/hooks", "description": "", "events": ["email.sent",
            "run.completed"], "enabled": "on", "consecutive_failures": "0"}  # fmt: skip
    assert client.post(add, form).status_code == 302
    assert WebhookEndpoint.objects.for_tenant(tenant).get().events == ["email.sent", "run.completed"]
