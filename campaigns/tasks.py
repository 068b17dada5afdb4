"""Celery entry points: they take ids, re-fetch inside the tenant's scope, and call services."""

import logging

from celery import shared_task

from campaigns import generation, services
from campaigns.models import Campaign, CampaignRun, GeneratedEmail, RunStatus
from tenants.models import Tenant
from tenants.scoping import tenant_scope

log = logging.getLogger(__name__)
RETRY = {
    "autoretry_for": (ConnectionError, TimeoutError),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}


def _run(run_id: int, tenant_id: int) -> CampaignRun:
    tenant = Tenant.objects.get(pk=tenant_id)
    return CampaignRun.objects.for_tenant(tenant).select_related("campaign", "tenant").get(pk=run_id)


@shared_task(acks_late=True, **RETRY)
def start_run(run_id: int, tenant_id: int, limit: int | None = None) -> int:
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        chunks = services.run_start(run=run, limit=limit)
    for chunk in chunks:
        generate_chunk.delay(run_id, tenant_id, chunk)
    return len(chunks)


@shared_task(acks_late=True, **RETRY)
def generate_chunk(run_id: int, tenant_id: int, contact_ids: list[int]) -> int:
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        try:
            return generation.run_generate_chunk(run=run, contact_ids=contact_ids)
        except Exception as exc:
            CampaignRun.objects.for_tenant(run.tenant).filter(pk=run.pk, status=RunStatus.RUNNING).update(
                error=f"chunk of {len(contact_ids)} contacts failed: {type(exc).__name__}: {exc}"[:2000]
            )
            raise


@shared_task(acks_late=True, **RETRY)
def send_run(run_id: int, tenant_id: int) -> dict:
    run = _run(run_id, tenant_id)
    with tenant_scope(run.tenant):
        return services.run_send_approved(run=run)


@shared_task(acks_late=True, **RETRY)
def send_email(email_id: int, tenant_id: int) -> str:
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        email = GeneratedEmail.objects.for_tenant(tenant).select_related("contact", "tenant").get(pk=email_id)
        return services.email_send(email=email)


@shared_task(acks_late=True, **RETRY)
def launch_scheduled(campaign_id: int, tenant_id: int) -> int | None:
    """Beat's entry point for scheduled campaigns: one run at a time, so a slot is skipped while one is active."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        campaign = Campaign.objects.for_tenant(tenant).filter(pk=campaign_id).first()
        if campaign is None:
            return None
        try:
            return services.campaign_launch(campaign=campaign).pk
        except services.CampaignError as exc:
            log.warning("scheduled launch of campaign %s skipped: %s", campaign_id, exc)
            return None
