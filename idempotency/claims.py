"""Idempotency-Key on every API POST (tenants.api.TenantScopedViewSet calls `begin` and `finish`).

The first request with a key claims it, one row per (tenant, key) inserted before the view runs, so a second
request with that key while the first is in flight is a 409. Its answer is stored on the row (2xx, and 4xx other
than 409/429, which depend on a state that may change); a 5xx gives the key back, so a retry runs again. Later
requests with the key and the same method, path, content type and body get the stored answer again, marked
`Idempotent-Replayed: true`; another request under the key is a 409. Keys expire IDEMPOTENCY_KEY_TTL_HOURS after
their claim (a beat task deletes them). A claim whose request died without answering is taken over after
IDEMPOTENCY_LEASE_SECONDS, longer than the server lets a request run (REQUEST_TIMEOUT_SECONDS)."""

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import exceptions, status

from idempotency.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# 1 to 255 printable ASCII characters, not starting or ending with a space (a UUID is the usual choice).
KEY = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")
NOT_STORED = {status.HTTP_409_CONFLICT, status.HTTP_429_TOO_MANY_REQUESTS}


class KeyInFlight(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_flight"
    default_detail = "A request with this Idempotency-Key is still being processed; retry once it has answered."
    wait = 1  # DRF's handler turns it into Retry-After


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was used for another request (method, path or body differ); use a new key for a new "
        "request."
    )


class Replayed(Exception):
    """Raised before the view runs, with the stored answer the view's handle_exception returns instead."""

    def __init__(self, response: HttpResponse):
        super().__init__("replayed")
        self.response = response


@dataclass(frozen=True)
class Claim:
    pk: int
    claimed_at: datetime  # the claim's identity: a request whose lease was taken over writes nothing


def begin(request, tenant) -> Claim | None:
    """For a POST with the header: the claim this request now holds, or Replayed / 409 / 400. None otherwise."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return None
    if not KEY.fullmatch(key):
        raise exceptions.ValidationError(
            {HEADER: ["Must be 1 to 255 printable ASCII characters, not starting or ending with a space."]}
        )
    return claim(tenant=tenant, key=key, fingerprint=fingerprint(request))


def fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path(), request.content_type or ""):
        digest.update(part.encode() + b"\n")
    digest.update(request.body)  # Django's: read once and kept, so the parsers still see it
    return digest.hexdigest()


def claim(*, tenant, key: str, fingerprint: str) -> Claim:
    now = timezone.now()
    row, created = IdempotencyKey.objects.get_or_create(
        tenant=tenant, key=key, defaults={"fingerprint": fingerprint, "claimed_at": now}
    )
    if created:
        return Claim(row.pk, now)
    expired = row.claimed_at <= now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    abandoned = row.status is None and row.claimed_at <= now - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)
    if expired or abandoned:
        # Taken over as if new; of two requests doing so at once, only the one whose UPDATE still finds the old
        # claim wins, and the other looks at the row again.
        taken = IdempotencyKey.objects.filter(pk=row.pk, claimed_at=row.claimed_at).update(
            fingerprint=fingerprint, claimed_at=now, status=None, content_type="", body=b""
        )
        return Claim(row.pk, now) if taken else claim(tenant=tenant, key=key, fingerprint=fingerprint)
    if row.fingerprint != fingerprint:
        raise KeyReused()
    if row.status is None:
        raise KeyInFlight()
    replay = HttpResponse(bytes(row.body), status=row.status, content_type=row.content_type or None)
    replay[REPLAYED] = "true"
    raise Replayed(replay)


def finish(claim: Claim, response) -> None:
    """Store the answer on the claimed key, or give the key back when the answer is not one to replay."""
    mine = IdempotencyKey.objects.filter(pk=claim.pk, claimed_at=claim.claimed_at, status=None)
    code = response.status_code
    if not (200 <= code < 300 or 400 <= code < 500) or code in NOT_STORED or getattr(response, "streaming", False):
        mine.delete()
        return
    if hasattr(response, "render"):
        response.render()
    mine.update(status=code, content_type=response.get("Content-Type", ""), body=response.content)
    response[REPLAYED] = "false"


def keys_expire(*, now: datetime | None = None) -> int:
    """Delete the keys past their time to live; the number deleted."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    return IdempotencyKey.objects.filter(claimed_at__lte=cutoff).delete()[0]
