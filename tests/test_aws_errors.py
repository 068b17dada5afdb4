"""One AWS error vocabulary: which botocore failures a retry can help, decided in one place (tenants/aws_errors),
first on real botocore exception objects, then through each adapter (Bedrock, Bedrock batch, Personalize's
runtime and control plane, STS) against the emulator over HTTP."""

import socket
import threading

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
    UnknownServiceError,
)

from recommendations.personalize import PersonalizeError, personalize_call
from routing.errors import ProviderError, ThrottledError
from routing.providers import bedrock_batch
from routing.providers.bedrock import BedrockProvider
from routing.types import LLMRequest
from tenants import aws
from tenants.aws_errors import aws_error

NOVA = "us.amazon.nova-lite-v1:0"
URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse"


def client_error(code: str, status: int, operation: str = "Converse") -> ClientError:
    """A ClientError as botocore builds it from a parsed error response."""
    response = {
        "Error": {"Code": code, "Message": f"{code} said so"},
        "ResponseMetadata": {"RequestId": "1f0e", "HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    return ClientError(response, operation)


RETRYABLE = [
    client_error("ThrottlingException", 429),
    client_error("Throttling", 400, "AssumeRole"),  # STS says it with a 400
    client_error("ThrottlingException", 400, "DescribeDatasetGroup"),  # so does Personalize's control plane
    client_error("TooManyRequestsException", 429),
    client_error("ServiceQuotaExceededException", 400),  # Bedrock: "resubmit your request later"
    client_error("LimitExceededException", 400, "CreateDatasetGroup"),  # Personalize: requests per second
    client_error("RequestLimitExceeded", 400),
    client_error("SlowDown", 503, "PutObject"),
    client_error("ModelNotReadyException", 429),
    client_error("ModelTimeoutException", 408),
    client_error("RequestTimeoutException", 408, "GetRecommendations"),
    client_error("RequestTimeout", 400, "PutObject"),  # S3's socket timeout is a 400
    client_error("InternalServerException", 500),
    client_error("ServiceUnavailableException", 503),
    client_error("SomethingNewOnTheirSide", 502),
    ReadTimeoutError(endpoint_url=URL),
    ConnectTimeoutError(endpoint_url=URL),
    EndpointConnectionError(endpoint_url=URL),
    ConnectionClosedError(endpoint_url=URL),
    ResponseStreamingError(error="connection broken"),
    IncompleteReadError(actual_bytes=10, expected_bytes=100),
]
PERMANENT = [
    client_error("ValidationException", 400),
    client_error("InvalidInputException", 400, "CreateDataset"),
    client_error("AccessDenied", 403, "AssumeRole"),
    client_error("AccessDeniedException", 403),
    client_error("ResourceNotFoundException", 404),
    client_error("ResourceAlreadyExistsException", 400, "CreateSchema"),
    client_error("UnrecognizedClientException", 403),
    client_error("ExpiredToken", 400, "AssumeRole"),
    client_error("ExpiredTokenException", 403),
    client_error("InvalidClientTokenId", 403, "AssumeRole"),
    client_error("SomethingNewAboutTheRequest", 400),
    ParamValidationError(report="Invalid length for parameter jobName, value: 0, valid min length: 1"),
    NoCredentialsError(),
    NoRegionError(),
    UnknownServiceError(service_name="bedrock-nope", known_service_names="bedrock"),
]


@pytest.mark.parametrize("exc", RETRYABLE, ids=lambda exc: _code(exc))
def test_what_a_retry_can_help(exc):
    error = aws_error(exc, "doing it")
    assert isinstance(error, ProviderError) and not error.permanent
    assert error.code == _code(exc) and error.message.startswith("doing it: ")


@pytest.mark.parametrize("exc", PERMANENT, ids=lambda exc: _code(exc))
def test_what_a_retry_cannot_help(exc):
    error = aws_error(exc, "doing it")
    assert isinstance(error, ProviderError) and error.permanent and not isinstance(error, ThrottledError)
    assert error.code == _code(exc) and error.message.startswith("doing it: ")


def test_throttling_is_its_own_kind_and_says_what_aws_said():
    error = aws_error(client_error("ThrottlingException", 429), "Bedrock Converse")
    assert isinstance(error, ThrottledError)
    assert error.message == "Bedrock Converse: ThrottlingException: ThrottlingException said so"
    assert not isinstance(aws_error(client_error("InternalServerException", 500), "x"), ThrottledError)


def _code(exc) -> str:
    return exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__


# Through the adapters, against the emulator
@pytest.fixture
def hang_up():
    """An endpoint that accepts a connection, reads the request and closes without answering: AWS's side
    dropping the connection, which botocore reports as ConnectionClosedError."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(65536)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def converse(settings, tenant, **options):
    options = {"region": settings.AWS_REGION, "max_attempts": 1, "read_timeout": 30, **options}
    return BedrockProvider(tenant=tenant, **options).converse(LLMRequest(NOVA, "system", "Say hello", max_tokens=50))


def test_bedrock_a_dropped_connection_is_retryable(aws_settings, tenant, hang_up):
    with pytest.raises(ProviderError) as raised:
        converse(aws_settings, tenant, endpoint_url=hang_up)
    assert not raised.value.permanent and raised.value.code == "ConnectionClosedError"


BEDROCK_FAULTS = [
    ("internal", "InternalServerException"),
    ("timeout", "ModelTimeoutException"),
    ("unavailable", "ServiceUnavailableException"),
]


@pytest.mark.parametrize("fault, code", BEDROCK_FAULTS)
def test_bedrock_a_5xx_or_408_is_retryable(aws_settings, emulator, tenant, fault, code):
    emulator.configure(model_id=NOVA, fail_next=1, fail_with=fault)
    with pytest.raises(ProviderError) as raised:
        converse(aws_settings, tenant)
    assert not raised.value.permanent and raised.value.code == code


def test_bedrock_a_bad_parameter_is_permanent(aws_settings, tenant, emulator):
    bedrock = BedrockProvider(tenant=tenant, region=aws_settings.AWS_REGION)
    with pytest.raises(ProviderError) as raised:
        bedrock.converse(LLMRequest(NOVA, "system", "Say hello", max_tokens=0))  # botocore: below the minimum of 1
    assert raised.value.permanent and raised.value.code == "ParamValidationError"
    assert not emulator.requests.snapshot()  # refused before anything was sent


BATCH = {
    "input_uri": "s3://mailsaas-test/batch/e.jsonl",
    "output_uri": "s3://mailsaas-test/batch/out/",
    "role_arn": "arn:aws:iam::123456789012:role/BedrockBatch",
}
JOB = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/nothing"


def batch_requests():
    return {f"c-{i}": LLMRequest(NOVA, "system", f"Write to person {i}") for i in range(100)}


def test_batch_a_bad_parameter_is_permanent(aws_settings, tenant):
    with pytest.raises(ProviderError) as raised:  # botocore refuses an empty job name before sending it
        bedrock_batch.batch_job_submit(tenant=tenant, name="", model_id=NOVA, requests=batch_requests(), **BATCH)
    assert raised.value.permanent and raised.value.code == "ParamValidationError"


def test_batch_a_5xx_or_a_read_timeout_is_retryable_and_not_found_is_permanent(aws_settings, emulator, tenant):
    aws_settings.AWS_MAX_ATTEMPTS = 1
    emulator.configure(model_id="GetModelInvocationJob", fail_next=1, fail_with="internal")
    with pytest.raises(ProviderError) as raised:
        bedrock_batch.batch_job_status(tenant=tenant, job_arn=JOB)
    assert not raised.value.permanent and raised.value.code == "InternalServerException"
    with pytest.raises(ProviderError) as raised:
        bedrock_batch.batch_job_status(tenant=tenant, job_arn=JOB)
    assert raised.value.permanent and raised.value.code == "ResourceNotFoundException"
    emulator.configure(model_id="GetModelInvocationJob", latency_ms=1500)
    aws_settings.AWS_READ_TIMEOUT = 0.3
    with pytest.raises(ProviderError) as raised:
        bedrock_batch.batch_job_status(tenant=tenant, job_arn=JOB)
    assert not raised.value.permanent and raised.value.code == "ReadTimeoutError"


def test_batch_records_that_failed_on_awss_side_may_be_retried():
    assert not bedrock_batch.record_error({"errorCode": 503, "errorMessage": "busy"}).permanent
    assert not bedrock_batch.record_error({"errorCode": 429, "errorMessage": "throttled"}).permanent
    assert bedrock_batch.record_error({"errorCode": 400, "errorMessage": "malformed"}).permanent


def personalize(tenant, operation="describe_dataset_group", **params):
    params = params or {"datasetGroupArn": "arn:aws:personalize:us-east-1:123456789012:dataset-group/none"}
    return personalize_call(tenant=tenant, service="personalize", operation=operation, **params)


@pytest.mark.parametrize(
    "fault, code",
    [("internal", "InternalFailure"), ("timeout", "RequestTimeoutException"), ("throttle", "ThrottlingException")],
)
def test_personalize_control_plane_faults_are_retryable(aws_settings, emulator, tenant, fault, code):
    aws_settings.AWS_MAX_ATTEMPTS = 1
    emulator.configure(model_id="DescribeDatasetGroup", fail_next=1, fail_with=fault)
    with pytest.raises(PersonalizeError) as raised:
        personalize(tenant)
    assert isinstance(raised.value, ProviderError)  # one vocabulary: a task retries it like any other
    assert not raised.value.permanent and raised.value.code == code


def test_personalize_control_plane_not_found_and_invalid_input_are_permanent(aws_settings, tenant):
    with pytest.raises(PersonalizeError) as raised:
        personalize(tenant)
    assert raised.value.permanent and raised.value.code == "ResourceNotFoundException"
    with pytest.raises(PersonalizeError) as raised:
        personalize(tenant, "create_dataset_group", name="ms-bad", domain="NOT_A_DOMAIN")
    assert raised.value.permanent and raised.value.code == "InvalidInputException"


def test_personalize_runtime_a_timeout_is_retryable(aws_settings, emulator, tenant):
    aws_settings.AWS_MAX_ATTEMPTS = 1
    arn = "arn:aws:personalize:us-east-1:123456789012:recommender/none"
    emulator.configure(model_id=arn, fail_next=1, fail_with="timeout")
    with pytest.raises(PersonalizeError) as raised:
        personalize_call(
            tenant=tenant,
            service="personalize-runtime",
            operation="get_recommendations",
            recommenderArn=arn,
            userId="u0",
        )
    assert not raised.value.permanent and raised.value.code == "RequestTimeoutException"


ROLE = "arn:aws:iam::222233334444:role/MailsaasAccess"


@pytest.fixture
def own_account(tenant, emulator):
    emulator.sts.add_role(ROLE, external_id="acme-ext-1")
    tenant.aws_role_arn, tenant.aws_external_id = ROLE, "acme-ext-1"
    return tenant


STS_FAULTS = [("throttle", "Throttling"), ("timeout", "RequestTimeout"), ("internal", "InternalFailure")]


@pytest.mark.parametrize("fault, code", STS_FAULTS)
def test_sts_faults_are_retryable(aws_settings, emulator, own_account, fault, code):
    aws_settings.AWS_MAX_ATTEMPTS = 1
    emulator.configure(model_id="AssumeRole", fail_next=1, fail_with=fault)
    with pytest.raises(ProviderError) as raised:
        aws.assumed_credentials(tenant=own_account, region="us-east-1")
    assert not raised.value.permanent and raised.value.code == code


def test_sts_a_refused_role_is_permanent(aws_settings, own_account):
    own_account.aws_role_arn = "arn:aws:iam::222233334444:role/NotOurs"
    with pytest.raises(ProviderError) as raised:
        aws.assumed_credentials(tenant=own_account, region="us-east-1")
    assert raised.value.permanent and raised.value.code == "AccessDenied"
