"""A tenant's data in Amazon Personalize's vocabulary: contacts (users), items and interactions."""

from datetime import UTC, datetime, timedelta

from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwned

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)


def moment_problem(moment: datetime) -> str:
    """Why an event's time cannot be right ("" when it can be): Personalize counts unix seconds from 1970, and
    nothing has happened yet tomorrow. The import and the API check the same."""
    if moment < EPOCH:
        return "before 1970"
    if moment > timezone.now() + CLOCK_SKEW:
        return "in the future"
    return ""


class Contact(TenantOwned):
    external_id = models.CharField(max_length=100, help_text="USER_ID in the tenant's systems")
    email = models.EmailField()
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    gender = models.CharField(max_length=20, blank=True)
    locale = models.CharField(max_length=20, blank=True)
    timezone = models.CharField(
        max_length=64, blank=True, help_text="IANA name, for send windows. Blank: guessed from the locale, else the "
        "tenant's.",
    )  # fmt: skip
    attributes = models.JSONField(default=dict, blank=True)
    unsubscribed = models.BooleanField(default=False)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Last change: a save, an import or a consent change.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "external_id"], name="contact_unique_external_id")]
        indexes = [models.Index(fields=["tenant", "updated_at"], name="contact_tenant_updated")]

    def __str__(self):
        return f"{self.full_name or self.email} ({self.external_id})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ConsentSource(models.TextChoices):
    IMPORT = "import"
    API = "api"
    UNSUBSCRIBE_LINK = "unsubscribe-link"
    ADMIN = "admin"
    MAILTO = "mailto"  # mail to the List-Unsubscribe mailto address (campaigns.webhooks)


class ConsentEvent(TenantOwned):
    """One change of a contact's consent, kept so that every unsubscribe and re-subscribe can be accounted for."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_events")
    subscribed = models.BooleanField(help_text="the contact's consent after this change")
    source = models.CharField(max_length=20, choices=ConsentSource.choices)
    actor = models.CharField(max_length=200, help_text="who made the change: an API key, an admin user, an import")
    note = models.TextField(blank=True, help_text="the reason, or the consent a re-subscribe rests on")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "contact", "at"])]

    def __str__(self):
        return f"{'subscribed' if self.subscribed else 'unsubscribed'} via {self.source} by {self.actor}"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual", "Added by hand"
    IMPORTED = "imported"


class Suppression(TenantOwned):
    """An address the tenant must not email, whoever it belongs to now (a contact imported again under another id
    is still not emailed), with why, from where, by whom and when. Written by datasets.suppression."""

    address = models.CharField(max_length=254, help_text="Lower-cased.")
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    source = models.CharField(max_length=40, help_text="Where it came from: the unsubscribe link, an import, SES…")
    actor = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True, help_text="What the mail server said, or why it was added.")
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "address"], name="suppression_unique_address")]
        ordering = ["-at", "-pk"]
        verbose_name, verbose_name_plural = "suppressed address", "suppression list"

    def __str__(self):
        return f"{self.address} ({self.get_reason_display().lower()})"


class Item(TenantOwned):
    external_id = models.CharField(max_length=100, help_text="ITEM_ID")
    title = models.CharField(max_length=300)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    genres = models.JSONField(default=list, blank=True)
    plot = models.TextField(blank=True)
    imdb_rating = models.FloatField(null=True, blank=True)
    imdb_votes = models.PositiveIntegerField(null=True, blank=True)
    maturity_rating = models.PositiveSmallIntegerField(null=True, blank=True)
    maturity_rating_string = models.CharField(max_length=20, blank=True)
    promotion = models.BooleanField(default=False)
    creation_timestamp = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # A long plot's summary for prompts (campaigns.plots), made once and reused by every run, and the sha256 of the
    # plot it was made from: a plot edited since is shortened again. `short_plot_problem`: why the last try failed
    # (prompts then carry the plot truncated).
    short_plot = models.TextField(blank=True)
    short_plot_source = models.CharField(max_length=64, blank=True)
    short_plot_problem = models.CharField(max_length=500, blank=True)
    # Which chunk is shortening the plot, and until when its claim holds (a task killed half-way leaves its claim to
    # run out): claimed and released in transactions of their own, never held across the model call.
    short_plot_claim = models.CharField(max_length=32, blank=True)
    short_plot_claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "external_id"], name="item_unique_external_id")]

    def __str__(self):
        return f"{self.title} ({self.external_id})"


class Interaction(TenantOwned):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="interactions")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="interactions")
    event_type = models.CharField(max_length=50, default="watch")
    timestamp = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "contact", "item", "event_type", "timestamp"], name="interaction_unique_event"
            )
        ]
        indexes = [models.Index(fields=["tenant", "contact", "timestamp"])]

    def __str__(self):
        return f"{self.contact_id} {self.event_type} {self.item_id} at {self.timestamp:%Y-%m-%d}"
