"""The API's Idempotency-Key records: one row per (tenant, key), claimed before a POST runs and holding its answer
after, so a client's retry gets that answer again instead of doing the work twice."""

from django.db import models


class IdempotencyKey(models.Model):
    """A tenant's key: the request it was first sent with (as a fingerprint) and, once that request has answered,
    the answer. No `status` yet means the first request is still in flight (or died: its claim has a lease).
    Account bookkeeping like QuotaUsage, always read by (tenant, key), never listed: not a TenantOwned row."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path, content type and body.")
    claimed_at = models.DateTimeField(help_text="When the request that owns the key started.")
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The stored answer's HTTP status.")
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(blank=True, default=b"")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="one_idempotency_key_per_tenant")]
        indexes = [models.Index(fields=["claimed_at"], name="idempotency_key_claimed_at")]

    def __str__(self):
        return f"{self.key} ({self.tenant_id})"
