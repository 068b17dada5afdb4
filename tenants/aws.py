"""The AWS account a tenant's calls act in: boto3 clients in the tenant's region, signed with the platform's
credentials or, for a tenant that brings its own account, with those of the role it lets us assume (STS
AssumeRole with its external id, renewed shortly before they expire), and `aws_call`, through which every
adapter makes its calls so that every failure leaves as a ProviderError (see aws_errors). Also the S3 object
helpers that the Personalize export and Bedrock batch inference share. The only module that imports boto3.
"""

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import boto3
from botocore.config import Config
from django.conf import settings
from django.utils import timezone

from routing.errors import ProviderError
from tenants.aws_errors import AWS_ERRORS, aws_error

SESSION_SECONDS = 3600
RENEW_BEFORE = timedelta(minutes=5)  # a call made with credentials about to expire could fail half-way
CONNECT_TIMEOUT = 10
PLATFORM = "platform"  # the account of every tenant that does not bring its own


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str
    expires: datetime


_assumed: dict[tuple, Credentials] = {}
_assumed_lock = threading.Lock()


def aws_client(service: str, *, tenant=None, region: str = "", endpoint_url: str = "", max_attempts: int = 0,
               read_timeout: float = 0):  # fmt: skip
    """A boto3 client for `service` acting for `tenant`; unset options come from the settings.

    Ask again for each unit of work rather than keeping the client: clients are cached, and asking again is
    how a long-running job picks up renewed credentials.
    """
    region = (tenant.aws_region if tenant else "") or region or settings.AWS_REGION
    credentials = assumed_credentials(tenant=tenant, region=region) if tenant and tenant.aws_role_arn else None
    return _client(
        service, region, endpoint_url or settings.AWS_ENDPOINT_URLS.get(service) or None,
        max_attempts or settings.AWS_MAX_ATTEMPTS, read_timeout or settings.AWS_READ_TIMEOUT, credentials,
    )  # fmt: skip


def assumed_credentials(*, tenant, region: str) -> Credentials:
    """The tenant's role credentials, assumed through STS and reused until shortly before they expire."""
    key = (tenant.pk, tenant.aws_role_arn, tenant.aws_external_id, region)
    with _assumed_lock:
        cached = _assumed.get(key)
    if cached and cached.expires - RENEW_BEFORE > _now():
        return cached
    sts = _client("sts", region, settings.AWS_ENDPOINT_URLS.get("sts") or None, settings.AWS_MAX_ATTEMPTS,
                  settings.AWS_READ_TIMEOUT, None)  # fmt: skip
    request = {"RoleArn": tenant.aws_role_arn, "RoleSessionName": f"mailsaas-{tenant.slug}"[:64],
               "DurationSeconds": SESSION_SECONDS}  # fmt: skip
    if tenant.aws_external_id:
        request["ExternalId"] = tenant.aws_external_id
    try:
        found = sts.assume_role(**request)["Credentials"]
    except AWS_ERRORS as exc:
        raise aws_error(exc, f"assuming {tenant.aws_role_arn} for tenant {tenant.slug}") from exc
    credentials = Credentials(
        found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"], found["Expiration"]
    )
    with _assumed_lock:
        _assumed[key] = credentials
    return credentials


def credentials_forget() -> None:
    """Drop every cached assumed-role credential (tests, or after rotating a role's trust policy)."""
    with _assumed_lock:
        _assumed.clear()


def aws_call(service: str, operation: str, *, tenant=None, doing: str, client: dict | None = None, **params) -> dict:
    """One API call for `tenant` (`client`: aws_client's options); any failure, the credentials' included, leaves
    as a ProviderError."""
    try:
        return getattr(aws_client(service, tenant=tenant, **(client or {})), operation)(**params)
    except AWS_ERRORS as exc:
        raise aws_error(exc, doing) from exc


def account_of(tenant) -> str:
    """The AWS account a tenant's calls act in: the one in its role's ARN, else the platform's."""
    if tenant is not None and tenant.aws_role_arn:
        return tenant.aws_role_arn.split(":")[4]
    return PLATFORM


def region_of(tenant) -> str:
    return (tenant.aws_region if tenant is not None else "") or settings.AWS_REGION


def ses_client_params(tenant) -> dict:
    """How django-anymail's SES backend builds its boto3 client for the tenant: its region, the emulator's
    endpoint when configured, the tenant's role credentials when it brings its own account, and one attempt, so
    that a send botocore would retry after a lost reply is never sent twice (the send path decides what a failure
    means, and the Celery task retries)."""
    params = {
        "region_name": region_of(tenant),
        "config": {"retries": {"mode": "standard", "total_max_attempts": 1}, "connect_timeout": CONNECT_TIMEOUT,
                   "read_timeout": settings.EMAIL_TIMEOUT},
    }  # fmt: skip
    if endpoint := settings.AWS_ENDPOINT_URLS.get("sesv2"):
        params["endpoint_url"] = endpoint
    if tenant is not None and tenant.aws_role_arn:
        credentials = assumed_credentials(tenant=tenant, region=params["region_name"])
        params.update(aws_access_key_id=credentials.access_key, aws_secret_access_key=credentials.secret_key,
                      aws_session_token=credentials.token)  # fmt: skip
    return params


def s3_uri_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def s3_object_put(*, tenant, uri: str, body: bytes, content_type: str = "text/csv") -> None:
    bucket, key = s3_uri_parts(uri)
    _s3(tenant, f"writing {uri}", "put_object", Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def s3_object_get(*, tenant, uri: str) -> bytes:
    bucket, key = s3_uri_parts(uri)
    return _s3(tenant, f"reading {uri}", "get_object", Bucket=bucket, Key=key)["Body"].read()


def s3_object_keys(*, tenant, uri: str) -> list[str]:
    """The keys under an s3:// prefix, every page of them."""
    bucket, prefix = s3_uri_parts(uri)
    keys, token = [], {}
    while True:
        page = _s3(tenant, f"listing {uri}", "list_objects_v2", Bucket=bucket, Prefix=prefix, **token)
        keys += [entry["Key"] for entry in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = {"ContinuationToken": page["NextContinuationToken"]}


def s3_bucket_check(*, tenant, bucket: str) -> None:
    """Raise a permanent ProviderError that says what to do when the bucket is missing or out of reach."""
    try:
        _s3(tenant, f"checking bucket {bucket}", "head_bucket", Bucket=bucket)
    except ProviderError as exc:
        if exc.code in ("404", "NoSuchBucket", "403", "AccessDenied"):
            raise ProviderError(f"bucket {bucket} does not exist or is not ours ({exc.code}); create it with the "
                               "bucket policy in the README", permanent=True, code=exc.code) from exc  # fmt: skip
        raise


def _s3(tenant, doing: str, operation: str, **params) -> dict:
    return aws_call("s3", operation, tenant=tenant, doing=doing, **params)


_client_lock = threading.Lock()


def _client(service: str, region: str, endpoint_url: str | None, max_attempts: int, read_timeout: float,
            credentials: Credentials | None):  # fmt: skip
    # boto3 clients are thread-safe: one per configuration and set of credentials keeps connection pools warm.
    # The lock matters: a chunk starts all its threads at once, and without it each of them would build its own
    # client on a cold cache (tens of CPU milliseconds each, 80 at once: most of a worker's CPU in a benchmark).
    with _client_lock:
        return _client_build(service, region, endpoint_url, max_attempts, read_timeout, credentials)


@lru_cache(maxsize=64)
def _client_build(service: str, region: str, endpoint_url: str | None, max_attempts: int, read_timeout: float,
                  credentials: Credentials | None):  # fmt: skip
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=read_timeout,
        max_pool_connections=max(50, settings.LLM_CONCURRENCY),  # one connection per model call in flight
        # Path-style addressing, because an emulator's address cannot carry bucket names as host names.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    keys = {}
    if credentials:
        keys = {"aws_access_key_id": credentials.access_key, "aws_secret_access_key": credentials.secret_key,
                "aws_session_token": credentials.token}  # fmt: skip
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url, config=config, **keys)


def _now() -> datetime:
    return timezone.now()
