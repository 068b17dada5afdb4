"""Delivery through two real Celery worker processes (two pools of two) on the Redis broker, to a real SMTP
server (aiosmtpd): the same run sent twice at once reaches each person once, a refused recipient fails alone,
and the tenant's rate holds across both workers (its window in Redis)."""

from collections import Counter

import pytest

from campaigns import sending, tasks
from campaigns.models import EmailStatus, GeneratedEmail
from tests.test_pacing import approved_run, most_in_a_second, person
from tests.workers import wait_for_all

pytestmark = pytest.mark.worker


def smtp_env(smtp_server) -> dict[str, str]:
    return {"EMAIL_BACKEND": "smtp", "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port)}


def test_two_workers_sending_one_run_twice_deliver_each_email_once(start_workers, tenant, smtp_server):
    smtp_server.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: mailbox unavailable"
    contacts = [person(tenant, n) for n in range(24)] + [person(tenant, 99, email="gone@example.com")]
    run = approved_run(tenant, contacts)
    workers = start_workers(2, **smtp_env(smtp_server), EMAIL_SEND_CHUNK="5")
    tasks.run_send_approved.delay(run.pk, tenant.pk)  # the run's send, twice: both fan out
    tasks.run_send_approved.delay(run.pk, tenant.pk)
    for pk in GeneratedEmail.dangerously_unscoped.filter(run=run).values_list("pk", flat=True):
        tasks.email_send.delay(pk, tenant.pk)  # and a duplicate task for every email, racing the fan-outs
    finished = GeneratedEmail.dangerously_unscoped.filter(
        run=run, status__in=(EmailStatus.SENT, EmailStatus.SEND_FAILED)
    )
    wait_for_all(lambda: finished.count() == 25, workers=workers, what="every email to be sent or failed")

    recipients = Counter(address for received in smtp_server.received for address in received.rcpt_tos)
    assert recipients == Counter(f"person{n}@example.com" for n in range(24))  # each once, one message each
    assert all(len(received.rcpt_tos) == 1 for received in smtp_server.received)
    message_ids = Counter(received.message["Message-ID"] for received in smtp_server.received)
    assert len(message_ids) == 24 and max(message_ids.values()) == 1
    gone = GeneratedEmail.dangerously_unscoped.get(run=run, contact__email="gone@example.com")
    assert (
        gone.status == EmailStatus.SEND_FAILED and "550" in gone.send_error and "mailbox unavailable" in gone.send_error
    )
    assert sending.run_send_states(run=run) == dict.fromkeys(sending.SEND_STATES, 0) | {"sent": 24, "failed": 1}
    assert all("Task campaigns.tasks.email_send" in worker.output() for worker in workers)  # both did some


def test_the_tenants_rate_holds_across_two_workers(start_workers, tenant, smtp_server):
    rate = 5
    tenant.send_rate_per_second = rate
    tenant.save()
    run = approved_run(tenant, [person(tenant, n) for n in range(18)])
    workers = start_workers(2, **smtp_env(smtp_server))
    tasks.run_send_approved.delay(run.pk, tenant.pk)
    sent = GeneratedEmail.dangerously_unscoped.filter(run=run, status=EmailStatus.SENT)
    wait_for_all(lambda: sent.count() == 18, workers=workers, what="every email to be sent")

    arrivals = sorted(received.at for received in smtp_server.received)
    assert len(arrivals) == 18
    assert most_in_a_second(arrivals) <= rate, [round(t - arrivals[0], 3) for t in arrivals]
    assert arrivals[-1] - arrivals[0] >= (18 / rate) - 1.5  # paced, not all at once
