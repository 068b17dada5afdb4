"""The outcome of a campaign's subject-line variants (campaigns.subjects), for the campaign or one of its runs:
per variant index, what was sent, delivered, opened and clicked (unique per email, from the delivery reports), and
for an A/B campaign whether the best variant's lead is more than chance.

The rates are per delivered email when the provider reports deliveries for any email of the test, else per sent
email (a provider that reports only opens); every arm uses the same base. The best arm is tested against each other
arm with a two-proportion test (scipy's chi-square on the 2×2 table without continuity correction, the pooled
z-test's two-sided p-value), Holm-adjusted for the number of comparisons: it wins when every adjusted p-value is
below ALPHA. Below SUBJECT_TEST_MIN_PER_ARM emails per arm, or fewer than MIN_EXPECTED expected opens (clicks, and
their absences) per arm, the answer is "not enough data yet". A "pick" campaign is no random split (the reviewers
chose), so it is not tested: it counts which variants the reviewers picked instead."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q

from campaigns.models import (
    Campaign,
    CampaignRun,
    DeliveryReport,
    EmailEvent,
    EmailStatus,
    EventKind,
    GeneratedEmail,
    ReportKind,
    SubjectMode,
)

ALPHA = 0.05  # a 95 % confidence that the lead is not chance
MIN_EXPECTED = 5  # the chi-square approximation's rule: at least this many expected in every cell
SUBJECTS_SHOWN = 3  # the most common subject texts of an arm (personalized subjects differ per contact)
COUNTED = {"delivered": ReportKind.DELIVERED, "opened": ReportKind.OPENED, "clicked": ReportKind.CLICKED}
RATE_BASES = [("delivered", "Per delivered email"), ("sent", "Per sent email")]


class Verdict:
    WINNER = "winner"  # the best arm beats every other
    NO_WINNER = "no_winner"  # enough data, and the differences could be chance
    NOT_ENOUGH_DATA = "not_enough_data"
    NOT_TESTED = "not_tested"  # a pick campaign, or no variants

    choices = [(WINNER, "A winner"), (NO_WINNER, "No clear winner"), (NOT_ENOUGH_DATA, "Not enough data yet"),
               (NOT_TESTED, "Not an A/B test")]  # fmt: skip


@dataclass(frozen=True)
class Arm:
    variant: int
    successes: int
    base: int

    @property
    def label(self) -> str:
        return variant_label(self.variant)

    @property
    def rate(self) -> float | None:
        return self.successes / self.base if self.base else None


def variant_label(index: int) -> str:
    """How a marketer names a variant: A for index 0, B for 1, …"""
    return chr(ord("A") + index) if 0 <= index < 26 else str(index)


def subject_test_report(*, campaign: Campaign, run: CampaignRun | None = None) -> dict:
    """The campaign's (or its run's) subject test: the arms by variant index, and a verdict on opens and on
    clicks. Reads only the campaign's tenant's rows."""
    tenant_id = campaign.tenant_id
    chosen = {"run__campaign": campaign} if run is None else {"run__campaign": campaign, "run": run}
    emails = GeneratedEmail.objects.for_tenant(tenant_id).filter(**chosen)
    tested = emails.filter(subject_variant__isnull=False)
    # Three passes, each one join and one GROUP BY (a correlated EXISTS per email was seconds on 2,000 emails
    # whenever PostgreSQL's statistics lagged a bulk insert): the emails, their reports, and the reviewers' picks.
    of_tested = {f"email__{name}": value for name, value in chosen.items()} | {"email__subject_variant__isnull": False}
    rows = list(
        tested.values("subject_variant")
        .annotate(
            emails=Count("pk"), sent=Count("pk", filter=Q(status=EmailStatus.SENT)),
            edited=Count("pk", filter=Q(edited=True)), subject_count=Count("subject", distinct=True),
        )
        .order_by("subject_variant")
    )  # fmt: skip
    reported = {
        row.pop("email__subject_variant"): row
        for row in DeliveryReport.objects.for_tenant(tenant_id).filter(**of_tested).values("email__subject_variant")
        .annotate(**{name: Count("email", distinct=True, filter=Q(kind=kind)) for name, kind in COUNTED.items()})
    }  # fmt: skip
    picked = dict(
        EmailEvent.objects.for_tenant(tenant_id).filter(kind=EventKind.SUBJECT_PICKED, **of_tested)
        .values_list("email__subject_variant").annotate(Count("email", distinct=True))
    )  # fmt: skip
    for row in rows:
        row.update(reported.get(row["subject_variant"]) or dict.fromkeys(COUNTED, 0))
        row["picked"] = picked.get(row["subject_variant"], 0)
    base = "delivered" if any(row["delivered"] for row in rows) else "sent"
    ab = campaign.subject_mode == SubjectMode.AB
    arms = []
    for row in rows:
        index = row.pop("subject_variant")
        shown = (tested.filter(subject_variant=index).values("subject").annotate(n=Count("pk"))
                 .order_by("-n", "subject")[:SUBJECTS_SHOWN])  # fmt: skip
        arms.append({
            "variant": index, "label": variant_label(index), "subjects": [s["subject"] for s in shown], **row,
            "picked": None if ab else row["picked"],
            "open_rate": _rate(row["opened"], row[base]), "click_rate": _rate(row["clicked"], row[base]),
        })  # fmt: skip
    if not arms:
        why = "no email of this campaign has subject variants" + ("" if run is None else " in this run")
        opens = clicks = _verdict(Verdict.NOT_TESTED, why)
    elif not ab:
        why = "the reviewers picked each email's subject, so the variants are not random samples to compare"
        opens = clicks = _verdict(Verdict.NOT_TESTED, why)
    else:
        opens = arms_compare([Arm(a["variant"], a["opened"], a[base]) for a in arms], what="opens", base=base)
        clicks = arms_compare([Arm(a["variant"], a["clicked"], a[base]) for a in arms], what="clicks", base=base)
    return {
        "campaign": campaign.pk, "run": run.pk if run else None, "mode": campaign.subject_mode,
        "variants": campaign.subject_variants, "rate_base": base, "min_per_arm": settings.SUBJECT_TEST_MIN_PER_ARM,
        "alpha": ALPHA, "without_variants": emails.filter(subject_variant__isnull=True).count(), "arms": arms,
        "opens": opens, "clicks": clicks,
    }  # fmt: skip


def _rate(successes: int, base: int) -> float | None:
    return round(successes / base, 6) if base else None


def _verdict(verdict: str, detail: str, *, best=None, p_value=None, p_values=None) -> dict:
    return {"verdict": verdict, "best": best, "p_value": p_value, "p_values": p_values or {}, "detail": detail}


def arms_compare(arms: Sequence[Arm], *, what: str, base: str) -> dict:
    """Whether the arm with the highest rate beats each other arm (Holm-adjusted two-proportion tests)."""
    minimum = settings.SUBJECT_TEST_MIN_PER_ARM
    if len(arms) < 2:
        return _verdict(Verdict.NOT_ENOUGH_DATA, f"only variant {arms[0].label} was {base}: nothing to compare")
    smallest = min(arms, key=lambda arm: arm.base)
    if smallest.base < minimum:
        return _verdict(Verdict.NOT_ENOUGH_DATA, f"not enough data yet: each variant needs {minimum} {base} emails, "
                        f"variant {smallest.label} has {smallest.base}")  # fmt: skip
    successes, total = sum(arm.successes for arm in arms), sum(arm.base for arm in arms)
    pooled = successes / total
    expected = min(min(pooled, 1 - pooled) * arm.base for arm in arms)
    if expected < MIN_EXPECTED:
        return _verdict(Verdict.NOT_ENOUGH_DATA, f"not enough data yet: {successes} {what} in {total} {base} emails "
                        f"is too few to compare (at least {MIN_EXPECTED} expected per variant)")  # fmt: skip
    best = max(arms, key=lambda arm: (arm.rate, -arm.variant))
    raw = {arm.variant: _two_proportions(best, arm) for arm in arms if arm is not best}
    adjusted = _holm(raw)
    p_value = max(adjusted.values())
    p_values = {str(variant): round(p, 6) for variant, p in adjusted.items()}
    rate = f"{best.rate:.1%} {what} per {base} email"
    ahead = [variant for variant, p in adjusted.items() if p < ALPHA]
    close = [variant for variant, p in adjusted.items() if p >= ALPHA]
    if not close:
        detail = f"variant {best.label} wins with {rate}, ahead of {_listed(ahead, adjusted)}"
        return _verdict(Verdict.WINNER, detail, best=best.variant, p_value=round(p_value, 6), p_values=p_values)
    clearly = f", clearly ahead of {_listed(ahead, adjusted)}" if ahead else ""
    detail = (f"no clear winner yet: variant {best.label} leads with {rate}{clearly}, but its lead over "
              f"{_listed(close, adjusted)} could be chance")  # fmt: skip
    return _verdict(Verdict.NO_WINNER, detail, best=best.variant, p_value=round(p_value, 6), p_values=p_values)


def _listed(variants: list[int], p_values: dict[int, float]) -> str:
    """The variants in order, each with its adjusted p-value: 'B (p = 0.012) and C (p = 0.03)'."""
    named = [f"{variant_label(v)} (p = {p_values[v]:.2g})" for v in sorted(variants)]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def _two_proportions(a: Arm, b: Arm) -> float:
    """The two-sided p-value that arms a and b share one rate (equal to the pooled two-proportion z-test's)."""
    from scipy.stats import chi2_contingency  # scipy only where a test is computed: the web process stays light

    if a.successes * b.base == b.successes * a.base:
        return 1.0
    table = [[a.successes, a.base - a.successes], [b.successes, b.base - b.successes]]
    return float(chi2_contingency(table, correction=False).pvalue)


def _holm(p_values: dict[int, float]) -> dict[int, float]:
    """Holm's step-down adjustment: the family of comparisons keeps its error rate at ALPHA."""
    ordered, adjusted, running = sorted(p_values.items(), key=lambda item: item[1]), {}, 0.0
    for rank, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, (len(ordered) - rank) * p))
        adjusted[key] = running
    return adjusted
