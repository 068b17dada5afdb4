"""Trained embedded-recommender models, one version per training, kept per tenant."""

from django.db import models

from tenants.scoping import TenantOwned


class RecommenderModel(TenantOwned):
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    n_interactions = models.PositiveIntegerField()
    n_contacts = models.PositiveIntegerField()
    n_items = models.PositiveIntegerField()
    training_seconds = models.FloatField()
    params = models.JSONField(default=dict)
    blob = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "version"], name="recommender_unique_version")]

    def __str__(self):
        return f"v{self.version}: {self.n_interactions} interactions, {self.training_seconds:.2f}s"
