"""Idempotency-Key on the API's POSTs: a retry with the same key and request gets the stored answer and does nothing
twice, another request under the key is a 409, a request still running with the key is a 409 (two real concurrent
requests to gunicorn), keys are per tenant and expire, and the lease outlasts the server's request timeout."""

import os
import re
import runpy
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response

from datasets.models import Contact
from idempotency import claims
from idempotency.models import IdempotencyKey
from saas.celery import app as celery_app
from tenants.models import ApiKey, Role
from tests.conftest import api_client
from tests.workers import ROOT, database_url
from webhooks.models import WebhookDelivery, WebhookEndpoint

KEY = "6f1c2a1e-4b7d-4a63-9d0e-2f5b8c1d7e90"


def post(client, path, body, key=KEY, **extra):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)


def test_a_retry_gets_the_stored_answer_and_creates_nothing_twice(owner_api, tenant):
    body = {"external_id": "crm-1", "email": "ann@example.com", "first_name": "Ann"}
    first = post(owner_api, "/api/v1/contacts/", body)
    assert first.status_code == 201 and first["Idempotent-Replayed"] == "false"
    again = post(owner_api, "/api/v1/contacts/", body)
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again["Content-Type"] == "application/json"
    assert Contact.dangerously_unscoped.filter(tenant=tenant).count() == 1
    assert IdempotencyKey.objects.get(tenant=tenant, key=KEY).status == 201


def test_the_same_key_with_another_body_or_path_is_a_409_and_changes_nothing(owner_api, tenant):
    post(owner_api, "/api/v1/contacts/", {"external_id": "crm-1", "email": "ann@example.com"})
    for path, body in [("/api/v1/contacts/", {"external_id": "crm-2", "email": "bob@example.com"}),
                       ("/api/v1/items/", {"external_id": "crm-1", "title": "Alien"})]:  # fmt: skip
        response = post(owner_api, path, body)
        assert response.status_code == 409, response.content
        error = response.json()["error"]
        assert error["code"] == "idempotency_key_reused" and "Idempotency-Key" in error["message"]
    assert list(Contact.dangerously_unscoped.filter(tenant=tenant).values_list("external_id", flat=True)) == ["crm-1"]


def test_keys_are_per_tenant(owner_api, outsider_api, tenant, other_tenant):
    body = {"external_id": "crm-1", "email": "ann@example.com"}
    mine, theirs = post(owner_api, "/api/v1/contacts/", body), post(outsider_api, "/api/v1/contacts/", body)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs["Idempotent-Replayed"] == "false"  # run for them, not my answer replayed
    assert Contact.dangerously_unscoped.filter(tenant=other_tenant, external_id="crm-1").exists()
    assert IdempotencyKey.objects.filter(key=KEY).count() == 2


def test_a_key_of_the_same_tenant_works_across_its_api_keys_but_not_past_the_role(owner_api, tenant):
    body = {"external_id": "crm-1", "email": "ann@example.com"}
    post(owner_api, "/api/v1/contacts/", body)
    assert post(api_client(tenant, Role.MARKETER), "/api/v1/contacts/", body)["Idempotent-Replayed"] == "true"
    refused = post(api_client(tenant, Role.REVIEWER), "/api/v1/contacts/", body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"


def test_a_client_error_is_stored_and_replayed(owner_api, tenant):
    bad = {"external_id": "crm-1", "email": "not an address"}
    first = post(owner_api, "/api/v1/contacts/", bad)
    assert first.status_code == 400
    again = post(owner_api, "/api/v1/contacts/", bad)
    assert (again.status_code, again["Idempotent-Replayed"], again.json()) == (400, "true", first.json())


def test_a_409_of_the_objects_state_is_not_stored_so_a_retry_runs_again(owner_api, scoped):
    endpoint = WebhookEndpoint.objects.create(tenant=scoped, url="https://crm.example/hook", enabled=False)
    path = f"/api/v1/webhooks/{endpoint.pk}/ping/"
    refused = owner_api.post(path, HTTP_IDEMPOTENCY_KEY=KEY)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    assert not IdempotencyKey.objects.filter(key=KEY).exists()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=True)
    queued = owner_api.post(path, HTTP_IDEMPOTENCY_KEY=KEY)
    assert queued.status_code == 202 and queued["Idempotent-Replayed"] == "false"
    assert owner_api.post(path, HTTP_IDEMPOTENCY_KEY=KEY)["Idempotent-Replayed"] == "true"
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


def test_a_server_error_gives_the_key_back(tenant):
    claim = claims.claim(tenant=tenant, key=KEY, fingerprint="f" * 64)
    claims.finish(claim, Response(status=503))
    assert not IdempotencyKey.objects.exists()
    again = claims.claim(tenant=tenant, key=KEY, fingerprint="f" * 64)  # the retry runs: it holds the key now
    assert IdempotencyKey.objects.get().claimed_at == again.claimed_at


@pytest.mark.parametrize("key", ["", " padded", "x" * 256, "naïve", "tab\there"])
def test_a_malformed_key_is_a_400_naming_the_header_and_nothing_is_written(owner_api, tenant, key):
    response = post(owner_api, "/api/v1/contacts/", {"external_id": "crm-1", "email": "ann@example.com"}, key=key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "Idempotency-Key" in error["fields"]
    assert not Contact.dangerously_unscoped.exists() and not IdempotencyKey.objects.exists()


def test_the_longest_key_is_accepted(owner_api):
    key = "k" * 255
    assert (
        post(owner_api, "/api/v1/contacts/", {"external_id": "c", "email": "c@example.com"}, key=key).status_code == 201
    )


def test_without_a_key_or_on_other_methods_nothing_is_kept(owner_api, tenant):
    assert owner_api.post("/api/v1/contacts/", {"external_id": "c", "email": "c@example.com"}).status_code == 201
    assert owner_api.get("/api/v1/contacts/", HTTP_IDEMPOTENCY_KEY=KEY).status_code == 200
    changed = owner_api.patch("/api/v1/contacts/c/", {"first_name": "Cy"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert changed.status_code == 200 and "Idempotent-Replayed" not in changed
    assert not IdempotencyKey.objects.exists()


def test_keys_expire(owner_api, tenant, settings):
    body = {"external_id": "crm-1", "email": "ann@example.com"}
    post(owner_api, "/api/v1/contacts/", body)
    day_ago = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS, seconds=1)
    IdempotencyKey.objects.update(claimed_at=day_ago)
    Contact.dangerously_unscoped.all().delete()
    assert post(owner_api, "/api/v1/contacts/", body)["Idempotent-Replayed"] == "false"  # runs again, as new
    assert Contact.dangerously_unscoped.count() == 1

    IdempotencyKey.objects.create(tenant=tenant, key="old", fingerprint="f" * 64, claimed_at=day_ago, status=201)
    assert claims.keys_expire() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == [KEY]


def test_the_expiry_runs_hourly_from_beat():
    import idempotency.tasks  # noqa: F401 - registered as Celery autodiscovers it in a worker

    entry = celery_app.conf.beat_schedule["idempotency-keys-expire"]
    assert entry["task"] in celery_app.tasks and entry["options"]["expires"] < 3600


def test_a_claim_whose_request_died_is_taken_over_after_the_lease(owner_api, tenant, settings):
    body = {"external_id": "crm-1", "email": "ann@example.com"}
    stale = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS + 1)
    IdempotencyKey.objects.create(tenant=tenant, key=KEY, fingerprint="f" * 64, claimed_at=stale)
    assert post(owner_api, "/api/v1/contacts/", body).status_code == 201
    assert post(owner_api, "/api/v1/contacts/", body)["Idempotent-Replayed"] == "true"


def test_a_request_still_running_with_the_key_is_a_409(owner_api, tenant):
    """The first request's claim, as it stands while its view runs (answer not stored yet)."""
    body = {"external_id": "crm-1", "email": "ann@example.com"}
    request = owner_api.post("/api/v1/contacts/", body, format="json", HTTP_IDEMPOTENCY_KEY="probe").wsgi_request
    IdempotencyKey.objects.create(
        tenant=tenant, key=KEY, fingerprint=claims.fingerprint(request), claimed_at=timezone.now()
    )
    running = post(owner_api, "/api/v1/contacts/", body)
    assert running.status_code == 409 and running["Retry-After"] == "1"
    assert running.json()["error"]["code"] == "idempotency_key_in_flight"
    assert post(owner_api, "/api/v1/contacts/", {**body, "first_name": "A"}).json()["error"]["code"] == (
        "idempotency_key_reused"
    )
    assert Contact.dangerously_unscoped.filter(tenant=tenant).count() == 1  # only the probe's


def test_every_post_documents_the_header_and_its_409(client, db):
    schema = client.get("/api/schema/?format=json").json()
    posts = [op for methods in schema["paths"].values() for method, op in methods.items() if method == "post"]
    assert len(posts) >= 15
    for op in posts:
        headers = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers and "409" in op["responses"], op["operationId"]
    assert "Idempotency-Key" in schema["info"]["description"]


@pytest.mark.django_db(transaction=True)
def test_a_request_still_running_with_the_key_is_a_409_until_it_answers(gunicorn_server, tenant):
    """Two real requests at once to gunicorn: the first holds its key while its INSERT waits on a contact this test
    is inserting with the same external_id (PostgreSQL holds the second insert of a unique value until the first
    transaction ends); the second, same key and body, is refused at once; once this test rolls back, the first
    answers and a third is its stored answer replayed."""
    _, plain = ApiKey.objects.issue(tenant=tenant, name="crm", role=Role.OWNER)
    body = {"external_id": "crm-1", "email": "ann@example.com"}
    http = requests.Session()
    http.trust_env = False  # straight to the server, past any proxy of the environment

    def send():
        headers = {"Authorization": f"Bearer {plain}", "Idempotency-Key": KEY}
        return http.post(f"{gunicorn_server}/api/v1/contacts/", json=body, headers=headers, timeout=10)

    with ThreadPoolExecutor(1) as pool:
        with transaction.atomic():
            Contact.dangerously_unscoped.create(tenant=tenant, external_id="crm-1", email="held@example.com")
            first = pool.submit(send)
            wait_for(lambda: first.done() or waiting_on_me(), what="the first request to wait on the row")
            assert not first.done(), first.result().content
            running = send()
            assert not first.done()
            transaction.set_rollback(True)  # the first request's insert goes ahead
        answer = first.result(timeout=10)
    assert running.status_code == 409 and running.json()["error"]["code"] == "idempotency_key_in_flight"
    assert int(running.headers["Retry-After"]) >= 1
    assert answer.status_code == 201 and answer.headers["Idempotent-Replayed"] == "false", answer.content
    replay = send()
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == answer.json() and answer.json()["email"] == "ann@example.com"
    assert list(Contact.dangerously_unscoped.values_list("email", flat=True)) == ["ann@example.com"]


def test_the_lease_outlasts_the_servers_request_timeout(settings):
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["timeout"] == settings.REQUEST_TIMEOUT_SECONDS
    assert settings.IDEMPOTENCY_LEASE_SECONDS > settings.REQUEST_TIMEOUT_SECONDS


def waiting_on_me() -> bool:
    """Another connection waits for a lock this test's transaction holds (the first request, on its INSERT).

    Asked of pg_locks, which is live: pg_stat_activity would do, but a transaction sees it as it stood at its first
    look, so asked from inside the transaction holding the lock it never shows the request arriving later."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return cursor.fetchone()[0] > 0


def wait_for(condition, *, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def gunicorn_server(transactional_db, tmp_path):
    """gunicorn (the project's gunicorn.conf.py, two threads) on the test database: its base URL. On a free port
    that gunicorn picks itself (port 0, read back from its log): another run of the suite, or another xdist worker,
    may be serving one at the same moment."""
    log = open(tmp_path / "gunicorn.log", "a+")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "gunicorn", "saas.wsgi:application", "--bind=127.0.0.1:0",
               "--workers=1", "--threads=2", "--worker-class=gthread"]  # fmt: skip
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": django_settings.REDIS_URL}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = ""

    def up() -> bool:
        nonlocal url
        log.flush()
        output = log.seek(0) or log.read()
        assert process.poll() is None, f"gunicorn exited: {output[-3000:]}"
        listening = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", output)
        if not listening:
            return False
        url = listening.group(1)
        try:
            return requests.get(f"{url}/healthz", timeout=1).ok
        except requests.RequestException:  # not listening yet, or still loading the app
            return False

    try:
        wait_for(up, what="gunicorn to serve", timeout=20)
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: nothing is left to finish
        process.wait(timeout=10)
        log.close()
