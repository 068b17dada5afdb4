"""Budgets in dollars, enforced before each model call. The tenant's monthly budget (its own, or its plan's) is
held in one row per month (SpendUsage): a call, or a chunk of calls, first reserves its estimated cost under the
row's lock (spent + reserved + estimate <= budget, so two workers can never both take the last dollars), and
settles to the actual cost afterwards. The estimate is an upper bound: the prompt at three characters a token
(Bedrock's tokenizers average about four for English) at the dearer of the input and cache-write prices, plus
the answer's max_tokens at the output price."""

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from routing.catalog import ModelSpec
from routing.errors import ProviderError
from routing.models import SpendHold, SpendUsage
from routing.types import LLMRequest

CENT = Decimal("0.00000001")  # the ledger's precision
HELD_WAIT_SECONDS, HELD_POLL_SECONDS = 30.0, 0.2  # waiting for calls in flight to give back what they hold


class BudgetExceeded(ProviderError):
    """The tenant's monthly budget cannot cover this call: reported, never retried (until next month or a larger
    budget)."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True, code="BudgetExceeded")


def call_estimate(spec: ModelSpec, request: LLMRequest) -> Decimal:
    """An upper bound of what the call can cost."""
    prompt_tokens = len(request.system + request.prompt) // 3 + 1
    input_price = max(spec.input_per_1k, spec.cache_write_per_1k or 0)
    cost = (input_price * prompt_tokens + spec.output_per_1k * request.max_tokens) / 1000
    return cost.quantize(CENT, rounding=ROUND_CEILING)


def _money(value) -> str:
    """Dollars and cents, or to a hundredth of a cent where cents would hide the difference ($4.9999)."""
    return f"${value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"${value:,.4f}"


@dataclass
class Allowance:
    """Dollars reserved in the ledger for a batch of calls (a chunk's drafts), handed out per call without the
    database, so that worker threads can draw on it. `budget` None: no limit (nothing was reserved)."""

    tenant_id: int
    month: object
    budget: Decimal | None
    granted: Decimal = Decimal(0)
    spent_before: Decimal = Decimal(0)  # the month's spend when it was granted, for the message
    left: Decimal = Decimal(0)
    refusal: str = ""  # why nothing could be reserved: every call is refused with it
    hold_id: int | None = None  # the SpendHold row that counts `granted` in the ledger
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, amount: Decimal) -> None:
        if self.budget is None:
            return
        if self.refusal:
            raise BudgetExceeded(self.refusal)
        with self._lock:
            if amount > self.left:
                raise BudgetExceeded(
                    f"monthly budget {_money(self.budget)} reached: {_money(self.spent_before)} spent, the rest "
                    f"held by calls in flight; this call needs up to {_money(amount)}"
                )
            self.left -= amount

    def give_back(self, amount: Decimal) -> None:
        if self.budget is not None:
            with self._lock:
                self.left += amount


def budget_reserve(*, tenant, wanted: Decimal, at_least: Decimal | None = None,
                   wait_seconds: float = HELD_WAIT_SECONDS) -> Allowance:  # fmt: skip
    """Reserve `wanted` dollars of the tenant's budget for this month, or as much as remains if that is at least
    `at_least` (default: all of `wanted`); else BudgetExceeded naming the limit. Each try is one row lock. When
    what is missing is only held by calls in flight (they settle in seconds, usually for less), it waits for them,
    up to `wait_seconds`, before it refuses."""
    from tenants.services import quota_month

    month, budget = quota_month(), tenant.budget_usd
    allowance = Allowance(tenant.pk, month, budget)
    if budget is None or wanted <= 0:  # no limit, or a free model (the local one): nothing to hold
        return allowance
    wanted = wanted.quantize(CENT, rounding=ROUND_CEILING)
    at_least = wanted if at_least is None else at_least
    SpendUsage.objects.get_or_create(tenant_id=tenant.pk, month=month)
    deadline = time.monotonic() + wait_seconds
    while True:
        with transaction.atomic():
            row = SpendUsage.objects.select_for_update().get(tenant_id=tenant.pk, month=month)
            row.reserved_usd -= _holds_expire(tenant.pk, month)
            grant = min(wanted, budget - row.spent_usd - row.reserved_usd)
            if grant >= at_least and grant > 0:
                row.reserved_usd += grant
                row.save(update_fields=["reserved_usd"])
                hold = SpendHold.objects.create(
                    tenant_id=tenant.pk, month=month, amount_usd=grant, expires_at=timezone.now() + _hold_lease()
                )
                allowance.granted, allowance.left, allowance.spent_before = grant, grant, row.spent_usd
                allowance.hold_id = hold.pk
                return allowance
            row.save(update_fields=["reserved_usd"])
        could_fit = budget - row.spent_usd >= at_least
        if not could_fit or time.monotonic() >= deadline:
            raise BudgetExceeded(
                f"monthly budget {_money(budget)} reached: {_money(row.spent_usd)} spent"
                + (f", {_money(row.reserved_usd)} held by calls in flight" if row.reserved_usd else "")
                + f"; this needs up to {_money(at_least)}"
            )
        time.sleep(HELD_POLL_SECONDS)


def budget_settle(allowance: Allowance, spent: Decimal) -> None:
    """Give back what was reserved and book what was spent (also with no budget: the month's spend is kept)."""
    spent = Decimal(spent).quantize(CENT, rounding=ROUND_HALF_UP)
    if not spent and not allowance.granted:
        return
    SpendUsage.objects.get_or_create(tenant_id=allowance.tenant_id, month=allowance.month)
    with transaction.atomic():
        # Only a hold still there is given back: one that expired was given back by the sweep that removed it.
        held = bool(allowance.hold_id) and SpendHold.objects.filter(pk=allowance.hold_id).delete()[0] > 0
        SpendUsage.objects.filter(tenant_id=allowance.tenant_id, month=allowance.month).update(
            reserved_usd=F("reserved_usd") - (allowance.granted if held else 0), spent_usd=F("spent_usd") + spent
        )


def _hold_lease() -> timedelta:
    """How long a reservation can be in use: no task outlives Celery's hard time limit (a web request, far less)."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def _holds_expire(tenant_id: int, month) -> Decimal:
    """Remove the month's holds past their lease (their workers died) and say how much they held; under the
    ledger row's lock."""
    expired = SpendHold.objects.filter(tenant_id=tenant_id, month=month, expires_at__lt=timezone.now())
    amount = expired.aggregate(total=Sum("amount_usd"))["total"] or Decimal(0)
    if amount:
        expired.delete()
    return amount
