"""A campaign through a real Celery worker process and a real Redis broker, with the Bedrock provider
talking to the local emulator. Data is committed (transactional_db) so the worker sees it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
from saas.celery import app as celery_app
from tests.conftest import api_client, make_catalog

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.worker


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db, aws_emulator_env, tmp_path):
    if not settings.REDIS_URL or connection.vendor != "postgresql":
        pytest.fail("the worker test needs PostgreSQL and Redis: run it with `make test`")
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # no stale messages from earlier tests
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "LLM_BACKEND": "bedrock",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": aws_emulator_env.url,
        "EMAIL_BACKEND": "locmem",
        "CAMPAIGN_CHUNK_SIZE": "2",
    }
    command = [sys.executable, "-m", "celery", "-A", "saas", "worker", "--concurrency=2", "--loglevel=info"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(tmp_path / "worker.log", "w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        process.log = log
        yield process
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(predicate, timeout=90.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            pytest.fail(f"the worker exited early:\n{worker_log(process)}")
        time.sleep(0.3)
    pytest.fail("timed out waiting for the worker" + (f"; its log:\n{worker_log(process)}" if process else ""))


def worker_log(process) -> str:
    process.log.flush()
    process.log.seek(0)
    return process.log.read()[-5000:]


def test_campaign_runs_through_a_real_worker_and_broker(worker, tenant, bedrock_settings, emulator):
    assert celery_app.conf.task_always_eager is False
    make_catalog(tenant, n_contacts=5, n_items=12)
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Worker run", n_items=2)
    client = api_client(tenant)

    launched = client.post(f"/api/v1/campaigns/{campaign.pk}/launch/", {}, format="json")
    assert launched.status_code == 202, launched.content
    run_id = launched.json()["id"]
    runs = CampaignRun.dangerously_unscoped.filter(pk=run_id)
    wait_for(lambda: runs.get().status == RunStatus.COMPLETED, timeout=120, process=worker)

    run = runs.get()
    assert (run.total, run.generated, run.failed) == (5, 5, 0)
    emails = GeneratedEmail.dangerously_unscoped.filter(run_id=run_id).select_related("contact")
    assert emails.count() == 5
    assert all(e.contact.first_name in e.body and e.status == EmailStatus.DRAFT for e in emails)
    assert len(emulator.requests.filter(operation="Converse", status=200)) == 5

    for email in emails[:2]:
        assert client.post(f"/api/v1/emails/{email.pk}/approve/").status_code == 200
    assert client.post(f"/api/v1/runs/{run_id}/send/").status_code == 202
    sent = GeneratedEmail.dangerously_unscoped.filter(run_id=run_id, status=EmailStatus.SENT)
    wait_for(lambda: sent.count() == 2, process=worker)
    assert all(e.message_id and e.sent_at for e in sent)
