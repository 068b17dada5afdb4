"""Signal receivers of the campaigns app."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from campaigns.models import Campaign
from campaigns.schedules import campaign_schedule_sync, schedule_remove


@receiver(post_delete, sender=Campaign, dispatch_uid="campaign_schedule_remove")
def campaign_deleted(sender, instance: Campaign, **kwargs) -> None:
    """However a campaign goes (API, admin, its tenant's deletion), its schedule goes too: beat would keep firing."""
    schedule_remove(tenant_id=instance.tenant_id, campaign_id=instance.pk)


@receiver(post_save, sender=Campaign, dispatch_uid="campaign_schedule_sync")
def campaign_saved(sender, instance: Campaign, created: bool, raw: bool = False, **kwargs) -> None:
    """A renamed campaign's schedule says so (the beat task itself reads the campaign afresh at every tick)."""
    if not created and not raw:
        campaign_schedule_sync(campaign=instance)
