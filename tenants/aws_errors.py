"""The one AWS error vocabulary: every botocore failure, from any service we call (Bedrock, Bedrock batch,
Personalize, S3, STS), becomes a ProviderError that says whether the same request may succeed later.

Retryable: throttling (whatever status the service sends it with; STS and Personalize's control plane say it
with a 400), AWS's own timeouts, any 5xx, 408 and 429, and the network: timeouts, refused, dropped or cut
connections. Permanent: validation, access denied, not found, unknown or expired credentials. A code listed in
neither is decided by its status, because AWS sends rate and server trouble as 429/5xx; an unknown 4xx is about
the request, and a retry would repeat it. A client error botocore raises before sending (bad parameters, no
credentials, no region, unknown service) is permanent: a retry repeats the same mistake, and retrying it for
ever hides the fix.
"""

from botocore.exceptions import (
    BotoCoreError,
    CapacityNotAvailableError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import ConnectionError as NetworkError

from routing.errors import ProviderError, ThrottledError

# botocore's standard retry mode treats these as throttling; ServiceQuotaExceededException is how Bedrock says
# "too many tokens or requests for your quota, resubmit later", and Personalize's LimitExceededException is
# its requests per second.
THROTTLING = frozenset(
    """Throttling ThrottlingException ThrottledException RequestThrottledException RequestThrottled
    TooManyRequestsException ProvisionedThroughputExceededException RequestLimitExceeded BandwidthLimitExceeded
    LimitExceededException SlowDown ServiceQuotaExceededException""".split()
)
# Transient whatever their status: timeouts on AWS's side, a model still loading, a request still in flight.
TRANSIENT = frozenset(
    """RequestTimeout RequestTimeoutException ModelTimeoutException ModelNotReadyException PriorRequestNotComplete
    InternalServerException InternalFailure ServiceUnavailableException ServiceUnavailable IDPCommunicationError""".split()
)
# Permanent whatever their status: the request is wrong, or we may not make it, and a retry would repeat it.
PERMANENT = frozenset(
    """ValidationException InvalidInputException InvalidParameterValue AccessDenied AccessDeniedException
    ResourceNotFoundException NoSuchBucket NoSuchKey ResourceAlreadyExistsException UnrecognizedClientException
    InvalidClientTokenId ExpiredToken ExpiredTokenException InvalidSignatureException SignatureDoesNotMatch""".split()
)
# The network failed or AWS's side cut the answer short, and a client-side retry budget that ran out.
NETWORK = (NetworkError, HTTPClientError, IncompleteReadError, CapacityNotAvailableError)
AWS_ERRORS = (ClientError, BotoCoreError)  # what an adapter catches around a boto3 call


def aws_error(exc: Exception, doing: str) -> ProviderError:
    """The botocore failure `exc` (raised while `doing` something) in the project's vocabulary."""
    if not isinstance(exc, ClientError):
        message = f"{doing}: {exc}"
        return ProviderError(message, permanent=not isinstance(exc, NETWORK), code=type(exc).__name__)
    error = exc.response.get("Error", {})
    code, said = error.get("Code") or "Unknown", error.get("Message") or str(exc)
    message = f"{doing}: {code}: {said}"
    if code in THROTTLING:
        return ThrottledError(message, code=code)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    transient = code not in PERMANENT and (code in TRANSIENT or retryable_status(status))
    return ProviderError(message, permanent=not transient, code=code)


def retryable_status(status: int) -> bool:
    """Whether an HTTP status (or a batch record's errorCode) says a retry may help."""
    return status >= 500 or status in (408, 429)


def aws_reach(exc: Exception) -> str:
    """How far a failed request got, for calls that must not be repeated blindly (sending an email):
    "answered" (AWS replied with an error: it did not act), "unreached" (no connection: nothing was sent), "lost"
    (the connection failed after the request may have gone) or "local" (botocore refused it before sending)."""
    if isinstance(exc, ClientError):
        return "answered"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return "unreached"
    return "lost" if isinstance(exc, NETWORK) else "local"
