"""Amazon Personalize: "Top picks for you" through personalize-runtime, with item metadata and the tenant's
exclude-what-they-saw filter. With `personalize_export` and `personalize_training`, the only code that talks to
Personalize; every failure leaves as a PersonalizeError, a ProviderError in the terms of tenants/aws_errors."""

from recommendations.base import Pick, RecommendationOptions
from recommendations.options import maturity_ceiling
from routing.errors import ProviderError
from tenants.aws import aws_call

METADATA_COLUMNS = {"ITEMS": ["TITLE", "YEAR", "PLOT", "GENRES", "US_MATURITY_RATING"]}
MAX_WITH_METADATA = 50  # GetRecommendations returns at most 50 items when it also returns metadata


class PersonalizeError(ProviderError):
    """Personalize (or the S3 and STS calls behind it) failed; a task retries it as it retries any ProviderError."""

    @classmethod
    def of(cls, error: ProviderError) -> "PersonalizeError":
        return cls(error.message, permanent=error.permanent, code=error.code)


def personalize_call(*, tenant, service: str, operation: str, **params) -> dict:
    """One Personalize API call for the tenant ("personalize" or "personalize-runtime")."""
    try:
        return aws_call(service, operation, tenant=tenant, doing=f"Personalize {operation}", **params)
    except ProviderError as exc:
        raise PersonalizeError.of(exc) from exc


def get_recommendations(*, tenant, recommender_arn: str, user_id: str, n: int, filter_arn: str = "") -> list[Pick]:
    entries = _item_list(tenant, recommender_arn, user_id, n, filter_arn)
    return [_pick(entry) for entry in entries]


def _item_list(tenant, recommender_arn: str, user_id: str, n: int, filter_arn: str) -> list[dict]:
    request = {
        "recommenderArn": recommender_arn,
        "userId": user_id,
        "numResults": min(n, MAX_WITH_METADATA),
        "metadataColumns": METADATA_COLUMNS,
    }
    if filter_arn:
        request["filterArn"] = filter_arn
    answer = personalize_call(tenant=tenant, service="personalize-runtime", operation="get_recommendations", **request)
    return answer.get("itemList", [])


def _pick(entry: dict) -> Pick:
    meta = entry.get("metadata") or {}
    year = meta.get("YEAR", "")
    return Pick(
        external_id=entry["itemId"],
        title=meta.get("TITLE", entry["itemId"]),
        year=int(year) if str(year).isdigit() else None,
        genres=tuple(g for g in meta.get("GENRES", "").split("|") if g),
        plot=meta.get("PLOT", ""),
        score=float(entry.get("score") or 0.0),
    )


def _allowed(entry: dict, contact, options: RecommendationOptions) -> bool:
    """Whether a recommended item passes a campaign's genre, maturity and per-contact exclusions."""
    meta = entry.get("metadata") or {}
    genres = {g.lower() for g in meta.get("GENRES", "").split("|") if g}
    rating = meta.get("US_MATURITY_RATING", "")
    ceiling = maturity_ceiling(options, contact.age)
    return (
        entry["itemId"] not in set(options.exclude_items.get(contact.pk, ()))
        and (not options.include_genres or bool(genres & {g.lower() for g in options.include_genres}))
        and not genres & {g.lower() for g in options.exclude_genres}
        and (ceiling is None or not rating.isdigit() or int(rating) <= ceiling)  # unrated items pass
    )


class PersonalizeRecommender:
    def __init__(self, tenant):
        if not tenant.personalize_recommender_arn:
            raise PersonalizeError(
                f"tenant {tenant.slug} uses Personalize but has no recommender ARN; run personalize_sync first",
                permanent=True,
            )
        self.tenant = tenant

    def top_picks(self, contacts: list, n: int, options: RecommendationOptions | None = None) -> dict[int, list[Pick]]:
        # A request takes one filter, and ours leaves out what the contact has seen; a campaign's own options
        # are applied here to a longer list. Promotions are not mapped: they would need filters of their own.
        wanted = MAX_WITH_METADATA if options else n
        picks = {}
        for contact in contacts:
            entries = _item_list(self.tenant, self.tenant.personalize_recommender_arn, contact.external_id, wanted,
                                 self.tenant.personalize_filter_arn)  # fmt: skip
            kept = [entry for entry in entries if options is None or _allowed(entry, contact, options)]
            picks[contact.pk] = [_pick(entry) for entry in kept[:n]]
        return picks
