"""What the product tells webhooks, in one place: each function is called by the code that made the change, inside
its transaction (the deliveries go out once it commits), and costs one small query when no endpoint listens."""

from webhooks.models import EventType
from webhooks.services import emit, endpoints_wanting

# The audit log's kinds (campaigns.models.EventKind) that are webhook events.
EMAIL_EVENTS = {"approved": EventType.EMAIL_APPROVED, "edited": EventType.EMAIL_APPROVED,
                "sent": EventType.EMAIL_SENT, "send_failed": EventType.EMAIL_FAILED}  # fmt: skip


def email_events(tenant_id: int, kind: str, email_ids: list[int], *, by: str = "", detail: dict | None = None) -> None:
    event_type = EMAIL_EVENTS.get(kind)
    if event_type is None or not endpoints_wanting(tenant_id, event_type):
        return
    from campaigns.models import GeneratedEmail

    rows = (
        GeneratedEmail.objects.for_tenant(tenant_id)
        .filter(pk__in=email_ids)
        .values(
            "pk", "run_id", "run__campaign_id", "contact__external_id", "status", "subject", "message_id", "send_error"
        )
    )
    items = []
    for row in rows.order_by("pk"):
        data = {"email_id": row["pk"], "run_id": row["run_id"], "campaign_id": row["run__campaign_id"],
                "contact_external_id": row["contact__external_id"], "status": row["status"], "subject": row["subject"]}  # fmt: skip
        if by:
            data["by"] = by
        if event_type == EventType.EMAIL_SENT:
            data["message_id"] = row["message_id"]
        if event_type == EventType.EMAIL_FAILED:
            data["reason"] = (detail or {}).get("reason") or row["send_error"]
        items.append(data)
    emit(tenant_id, event_type, items)


def run_completed(run) -> None:
    if not endpoints_wanting(run.tenant_id, EventType.RUN_COMPLETED):
        return
    emit(run.tenant_id, EventType.RUN_COMPLETED, [{
        "run_id": run.pk, "campaign_id": run.campaign_id, "status": run.status, "total": run.total,
        "generated": run.generated, "failed": run.failed, "cost_usd": str(run.cost_usd),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }])  # fmt: skip


def emails_generated(run, contact_ids: list[int]) -> None:
    """One event per stored chunk (not per email): the run, and each email written with its status."""
    if not contact_ids or not endpoints_wanting(run.tenant_id, EventType.EMAIL_GENERATED):
        return
    from campaigns.models import GeneratedEmail

    rows = GeneratedEmail.objects.for_tenant(run.tenant_id).filter(run=run, contact_id__in=contact_ids)
    emails = [{"email_id": pk, "contact_external_id": external_id, "status": status}
              for pk, external_id, status in rows.order_by("pk").values_list("pk", "contact__external_id", "status")]  # fmt: skip
    if emails:
        emit(run.tenant_id, EventType.EMAIL_GENERATED,
             [{"run_id": run.pk, "campaign_id": run.campaign_id, "emails": emails}])  # fmt: skip


def contacts_unsubscribed(tenant_id: int, contact_ids: list[int], *, source: str, at) -> None:
    if not contact_ids or not endpoints_wanting(tenant_id, EventType.CONTACT_UNSUBSCRIBED):
        return
    from datasets.models import Contact

    rows = Contact.objects.for_tenant(tenant_id).filter(pk__in=contact_ids).order_by("pk")
    emit(tenant_id, EventType.CONTACT_UNSUBSCRIBED, [
        {"contact_external_id": external_id, "email": email, "source": source, "at": at.isoformat()}
        for external_id, email in rows.values_list("external_id", "email")
    ])  # fmt: skip
