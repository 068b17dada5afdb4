"""Signal receivers of the campaigns app."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from campaigns.models import Campaign
from campaigns.schedules import schedule_remove


@receiver(post_delete, sender=Campaign, dispatch_uid="campaign_schedule_remove")
def campaign_deleted(sender, instance: Campaign, **kwargs) -> None:
    """However a campaign goes (API, admin, its tenant's deletion), its schedule goes too: beat would keep firing."""
    schedule_remove(tenant_id=instance.tenant_id, campaign_id=instance.pk)
