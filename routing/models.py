"""One usage record per model call: who, which model, tokens, cost, latency and why that model."""

from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwned


class LLMCall(TenantOwned):
    task = models.CharField(max_length=50)
    model_key = models.CharField(max_length=100)
    provider = models.CharField(max_length=20)
    model_id = models.CharField(max_length=200)
    invoked_model_id = models.CharField(max_length=300, blank=True)
    route_reason = models.CharField(max_length=300)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    # When the call was made (set by the gateway; records are saved in bulk later, so not at insert time).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "LLM call"

    def __str__(self):
        return f"{self.model_key} {self.input_tokens}+{self.output_tokens} tokens ${self.cost_usd}"
