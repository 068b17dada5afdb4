"""Pytest fixtures for the local AWS emulator: one server per session, a clean slate per test.

Enabled through `pytest_plugins = ["tests.fixtures_aws"]`. The clients are real boto3 clients with dummy
credentials and one attempt each, so a test sees every error; build others with `aws_client`.
"""

import boto3
import pytest
from botocore.config import Config
from botocore.httpsession import URLLib3Session

from awsemu.server import Emulator
from tenants.aws import credentials_forget

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
SERVICES = ("bedrock-runtime", "bedrock", "personalize-runtime", "personalize", "s3", "sts")
BUCKET = "mailsaas-test"
STATUS_STEP_MS = 10  # each Personalize and batch status lasts this long: transitions show, tests stay fast


def aws_client(emulator: Emulator, service: str, **config):
    """A boto3 client for `service` aimed at the emulator; `config` goes to botocore's Config."""
    config = {"retries": {"mode": "standard", "total_max_attempts": 1}, "read_timeout": 30, **config}
    return boto3.client(
        service, endpoint_url=emulator.url, region_name=REGION, config=Config(**config), **DUMMY_CREDENTIALS
    )


@pytest.fixture(scope="session")
def aws_emulator():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emulator(aws_emulator):
    """The session's emulator, reset before and after the test (knobs, request log, every service's data)."""
    aws_emulator.reset()
    yield aws_emulator
    aws_emulator.reset()


@pytest.fixture
def on_aws_send(monkeypatch):
    """Register `hook(request)`, called in the sending thread just before boto3 puts each request on the wire (the
    AWS side of the boundary: botocore's HTTP session), to see what holds at the moment of a call."""
    hooks = []
    send = URLLib3Session.send

    def sending(self, request):
        for hook in hooks:
            hook(request)
        return send(self, request)

    monkeypatch.setattr(URLLib3Session, "send", sending)
    return hooks.append


@pytest.fixture
def bedrock_client(emulator):
    return aws_client(emulator, "bedrock-runtime")


@pytest.fixture
def personalize_runtime_client(emulator):
    return aws_client(emulator, "personalize-runtime")


@pytest.fixture
def aws_emulator_env(emulator, monkeypatch):
    """Points boto3's environment (AWS_ENDPOINT_URL_*, region, credentials) at the emulator for code that
    builds its own clients."""
    for service in SERVICES:
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}", emulator.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return emulator


@pytest.fixture
def aws_settings(settings, aws_emulator_env):
    """Django's AWS settings aimed at the emulator for every service, with the Personalize bucket created
    (through boto3, over HTTP) and status changes a few milliseconds apart."""
    emulator = aws_emulator_env
    settings.AWS_ENDPOINT_URLS = dict.fromkeys(SERVICES, emulator.url)
    settings.AWS_MAX_ATTEMPTS = 3
    settings.PERSONALIZE_BUCKET = BUCKET
    settings.PERSONALIZE_ROLE_ARN = "arn:aws:iam::123456789012:role/PersonalizeS3Access"
    aws_client(emulator, "s3").create_bucket(Bucket=BUCKET)
    emulator.configure(status_step_ms=STATUS_STEP_MS)
    emulator.requests.clear()  # so a test's log holds its own calls only
    credentials_forget()
    yield settings
    credentials_forget()
