"""Who a campaign writes to, as its `audience` JSON says; recurring audiences are worked out afresh at every run.

    {}                                          everyone (subscribed: nobody unsubscribed is ever in an audience)
    {"kind": "everyone"}                        the same, said out loud
    {"kind": "filter", ...filters}              a saved filter (below)
    {"kind": "not_emailed", "days": 30, ...}    contacts sent nothing in the last 30 days (and matching the filters)
    {"kind": "active_since_last_run", ...}      contacts with an interaction since this campaign's last run began
                                                (with no earlier run: every contact with an interaction)

Filters: "min_age"/"max_age" (whole years, inclusive), "gender" and "locale" (a value or a list of values),
"attributes" ({"plan": "gold"}: each key must have exactly that value), "favorite_genre" (a genre or a list: the
contact's favorite genre from their history, as the prompt gets it). Without "kind", filters mean "filter".
Checked strictly before a campaign is saved (`audience_check`): an unknown key or a wrong type is refused with
the key's name and what it should be.
"""

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone

from datasets.models import Contact, Interaction, Suppression

KINDS = ("everyone", "filter", "not_emailed", "active_since_last_run")
FILTERS = ("min_age", "max_age", "gender", "locale", "attributes", "favorite_genre")
MAX_AGE = 150
MAX_DAYS = 3650
MAX_VALUES = 100


class AudienceError(ValueError):
    """The audience JSON is not valid; the message names the key and what it should be."""


def audience_check(value) -> dict:
    """The audience, normalized (lists where a list is allowed, "kind" set), or AudienceError saying what is wrong."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, dict):
        raise AudienceError('audience must be an object, e.g. {"kind": "filter", "locale": "en_US"}')
    kind = value.get("kind", "filter")  # keys without a kind are filters (an unknown one is named below)
    if kind not in KINDS:
        raise AudienceError(f"audience.kind {kind!r} is not one of {', '.join(KINDS)}")
    allowed = (
        {"kind"} | (set() if kind == "everyone" else set(FILTERS)) | ({"days"} if kind == "not_emailed" else set())
    )
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise AudienceError(
            f"unknown audience keys {', '.join(unknown)} for kind {kind!r}; allowed: {', '.join(sorted(allowed))}"
        )
    checked: dict = {"kind": kind}
    if kind == "not_emailed":
        if "days" not in value:
            raise AudienceError('audience of kind "not_emailed" needs "days": how many days without an email')
        checked["days"] = _whole(value["days"], "days", 1, MAX_DAYS)
    for key in ("min_age", "max_age"):
        if key in value:
            checked[key] = _whole(value[key], key, 0, MAX_AGE)
    if checked.get("min_age", 0) > checked.get("max_age", MAX_AGE):
        raise AudienceError(f"audience.min_age {checked['min_age']} is above audience.max_age {checked['max_age']}")
    for key in ("gender", "locale", "favorite_genre"):
        if key in value:
            checked[key] = _texts(value[key], key)
    if "attributes" in value:
        attributes = value["attributes"]
        if not isinstance(attributes, dict) or not attributes:
            raise AudienceError('audience.attributes must be a non-empty object, e.g. {"plan": "gold"}')
        for name, wanted in attributes.items():
            if not name or len(name) > 100:
                raise AudienceError("audience.attributes names must be 1 to 100 characters")
            if not isinstance(wanted, str | int | float | bool) or (isinstance(wanted, str) and len(wanted) > 200):
                raise AudienceError(
                    f"audience.attributes.{name} must be a text (up to 200 characters), a number or true/false"
                )
        checked["attributes"] = dict(attributes)
    return checked


def _whole(value, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AudienceError(f"audience.{key} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _texts(value, key: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
        raise AudienceError(f"audience.{key} must be a text or a list of 1 to {MAX_VALUES} texts")
    for text in values:
        if not isinstance(text, str) or not text.strip() or len(text) > 100:
            raise AudienceError(f"audience.{key} values must be non-empty texts of up to 100 characters, not {text!r}")
    return [text.strip() for text in values]


def audience_describe(audience: dict) -> str:
    """One line for people: "contacts not emailed in 30 days, aged 18-34, locale en_US"."""
    rules = audience_check(audience)
    kind = rules.get("kind", "everyone")
    head = {
        "everyone": "everyone",
        "filter": "contacts",
        "not_emailed": f"contacts not emailed in {rules.get('days')} days",
        "active_since_last_run": "contacts active since the last run",
    }[kind]
    parts = []
    if "min_age" in rules and "max_age" in rules:
        parts.append(f"aged {rules['min_age']}-{rules['max_age']}")
    elif "min_age" in rules:
        parts.append(f"aged {rules['min_age']}+")
    elif "max_age" in rules:
        parts.append(f"aged up to {rules['max_age']}")
    for key, said in (("gender", "gender"), ("locale", "locale"), ("favorite_genre", "favorite genre")):
        if key in rules:
            parts.append(f"{said} {' or '.join(rules[key])}")
    if "attributes" in rules:
        parts.append(", ".join(f"{name}={wanted}" for name, wanted in rules["attributes"].items()))
    return ", ".join([head, *parts]) + " (subscribed)"


def audience_contacts(campaign, *, now=None):
    """The subscribed contacts of the campaign's tenant its audience names, ordered by id (a queryset)."""
    from campaigns.models import ACTIVE_RUN_STATUSES, CampaignRun, EmailStatus, GeneratedEmail

    tenant, now = campaign.tenant, now or timezone.now()
    rules = audience_check(campaign.audience or {})
    listed = Suppression.objects.for_tenant(tenant).filter(address=Lower(OuterRef("email")))
    qs = Contact.objects.for_tenant(tenant).filter(unsubscribed=False).exclude(Exists(listed))
    if "min_age" in rules:
        qs = qs.filter(age__gte=rules["min_age"])
    if "max_age" in rules:
        qs = qs.filter(age__lte=rules["max_age"])
    if "gender" in rules:
        qs = qs.filter(_any_of("gender", rules["gender"]))
    if "locale" in rules:
        qs = qs.filter(_any_of("locale", rules["locale"]))
    if "attributes" in rules:
        qs = qs.filter(attributes__contains=rules["attributes"])
    kind = rules.get("kind", "everyone")
    if kind == "not_emailed":
        since = now - timedelta(days=rules["days"])
        emailed = GeneratedEmail.objects.for_tenant(tenant).filter(status=EmailStatus.SENT, sent_at__gte=since)
        qs = qs.exclude(pk__in=emailed.values("contact_id"))
    elif kind == "active_since_last_run":
        # The last run that has ended: the active one, if any, is the run being written (run_start) or blocks it.
        runs = CampaignRun.objects.for_tenant(tenant).filter(campaign=campaign).exclude(status__in=ACTIVE_RUN_STATUSES)
        last = runs.order_by("-created_at", "-pk").values_list("created_at", flat=True).first()
        interactions = Interaction.objects.for_tenant(tenant)
        if last is not None:
            interactions = interactions.filter(timestamp__gt=last)
        qs = qs.filter(pk__in=interactions.values("contact_id"))
    if "favorite_genre" in rules:
        from recommendations.services import favorite_genres

        wanted = {genre.lower() for genre in rules["favorite_genre"]}
        ids = list(qs.values_list("pk", flat=True))
        favorites = favorite_genres(tenant=tenant, contact_ids=ids)
        qs = qs.filter(pk__in=[pk for pk, genre in favorites.items() if genre and genre.lower() in wanted])
    return qs.order_by("pk")


def _any_of(field: str, values: list[str]) -> Q:
    """Case-insensitive: "en_us" finds "en_US", as people type it."""
    condition = Q()
    for value in values:
        condition |= Q(**{f"{field}__iexact": value})
    return condition
