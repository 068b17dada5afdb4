"""Amazon Personalize "Top picks for you" through boto3's personalize-runtime. The only module that calls it."""

from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from recommendations.base import Pick

METADATA_COLUMNS = {"ITEMS": ["TITLE", "YEAR", "PLOT", "GENRES"]}
MAX_WITH_METADATA = 50


class PersonalizeError(Exception):
    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


@lru_cache(maxsize=8)
def _client(region: str, endpoint_url: str | None, max_attempts: int):
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts}, max_pool_connections=50)
    return boto3.session.Session().client(
        "personalize-runtime", region_name=region, endpoint_url=endpoint_url or None, config=config
    )


def get_recommendations(*, recommender_arn: str, user_id: str, n: int, filter_arn: str = "") -> list[Pick]:
    client = _client(
        settings.AWS_REGION, settings.AWS_ENDPOINT_URLS.get("personalize-runtime"), settings.AWS_MAX_ATTEMPTS
    )
    request = {
        "recommenderArn": recommender_arn,
        "userId": user_id,
        "numResults": min(n, MAX_WITH_METADATA),
        "metadataColumns": METADATA_COLUMNS,
    }
    if filter_arn:
        request["filterArn"] = filter_arn
    try:
        answer = client.get_recommendations(**request)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        retryable = code.startswith("Throttling") or status >= 500 or status in (408, 429)
        raise PersonalizeError(f"Personalize {code}: {exc}", permanent=not retryable) from exc
    except BotoCoreError as exc:
        raise PersonalizeError(f"Personalize unreachable: {exc}", permanent=False) from exc
    return [_pick(entry) for entry in answer.get("itemList", [])]


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


class PersonalizeRecommender:
    def __init__(self, tenant):
        if not tenant.personalize_recommender_arn:
            raise PersonalizeError(
                f"tenant {tenant.slug} uses Personalize but has no recommender ARN; run personalize_sync first",
                permanent=True,
            )
        self.tenant = tenant

    def top_picks(self, contacts: list, n: int) -> dict[int, list[Pick]]:
        return {
            c.pk: get_recommendations(
                recommender_arn=self.tenant.personalize_recommender_arn,
                user_id=c.external_id,
                n=n,
                filter_arn=self.tenant.personalize_filter_arn,
            )  # fmt: skip
            for c in contacts
        }
