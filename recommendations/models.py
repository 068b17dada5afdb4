"""Trained embedded-recommender models, one version per training, and each tenant's recommender settings."""

from django.core.exceptions import ValidationError
from django.db import models

from recommendations.engine import EngineParams
from tenants.scoping import TenantOwned


class RecommenderModel(TenantOwned):
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    n_interactions = models.PositiveIntegerField()
    last_interaction_id = models.BigIntegerField(default=0, help_text="The newest interaction it was trained on.")
    n_contacts = models.PositiveIntegerField()
    n_items = models.PositiveIntegerField()
    training_seconds = models.FloatField()
    params = models.JSONField(default=dict, help_text="The settings used, including the ones training chose.")
    blob = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "version"], name="recommender_unique_version")]

    def __str__(self):
        return f"v{self.version}: {self.n_interactions} interactions, {self.training_seconds:.2f}s"


class RecommenderConfig(TenantOwned):
    """A tenant's choices for the embedded recommender; a tenant without a row gets the defaults."""

    event_weights = models.JSONField(
        default=dict, blank=True,
        help_text='How much each event type counts, e.g. {"watch": 1.0, "click": 0.5}; types not listed count 1. '
        "Empty: each training picks watch-over-click or equal weights, whichever ranks held-out data better.",
    )  # fmt: skip
    history_half_life = models.FloatField(
        null=True, blank=True, help_text="In items: a contact's item this many items back counts half. Empty: tuned."
    )
    popularity_half_life_days = models.FloatField(
        default=120.0, help_text="Recency of the popularity that contacts without history get. 0: no decay."
    )
    retrain_nightly = models.BooleanField(default=True, help_text="Retrain every night when the data changed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="recommender_config_one_per_tenant")]

    def __str__(self):
        return f"recommender settings of {self.tenant}"

    def clean(self):
        weights = self.event_weights
        valid = isinstance(weights, dict) and all(
            isinstance(k, str) and isinstance(v, int | float) and v >= 0 for k, v in weights.items()
        )
        if not valid:
            raise ValidationError({"event_weights": 'Give event types and non-negative numbers: {"watch": 1.0}.'})
        if self.history_half_life is not None and self.history_half_life <= 0:
            raise ValidationError({"history_half_life": "Must be positive."})
        if self.popularity_half_life_days < 0:
            raise ValidationError({"popularity_half_life_days": "Must not be negative."})

    def engine_params(self) -> EngineParams:
        return EngineParams(
            event_weights=dict(self.event_weights) or None,
            history_half_life=self.history_half_life,
            half_life_days=self.popularity_half_life_days,
        )
