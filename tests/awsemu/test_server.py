"""The server itself: concurrency, the HTTP side door, unknown paths, lifecycle, environment endpoints."""

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError, URLError

import boto3
import pytest
from botocore.exceptions import ClientError

from awsemu.server import Emulator
from tests.fixtures_aws import aws_client

NOVA = "amazon.nova-micro-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say hello"}]}]


def http(emulator, path, payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(emulator.url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_calls_wait_out_their_latency_concurrently(emulator, bedrock_client):
    emulator.configure(latency_ms=300)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: bedrock_client.converse(modelId=NOVA, messages=MESSAGES), range(8)))
    elapsed = time.monotonic() - started
    assert elapsed < 1.2, f"8 calls of 300 ms took {elapsed:.2f} s"
    assert all(a["metrics"]["latencyMs"] >= 300 for a in answers)
    assert len(emulator.requests.filter(status=200)) == 8


def test_knobs_can_be_set_and_read_over_http(emulator, bedrock_client):
    http(emulator, "/_emulator/config", {"throttle_rate": 1.0})
    config = http(emulator, "/_emulator/config", {"model_id": NOVA, "latency_ms": 5})
    assert config["default"]["throttle_rate"] == 1.0
    assert config["models"] == {NOVA: {"latency_ms": 5}}
    assert http(emulator, "/_emulator/config") == config
    with pytest.raises(ClientError) as excinfo:
        bedrock_client.converse(modelId=NOVA, messages=MESSAGES)
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"


def test_a_bad_knob_over_http_is_a_400_that_names_it(emulator):
    with pytest.raises(HTTPError) as excinfo:
        http(emulator, "/_emulator/config", {"throttle_rte": 0.5})
    assert excinfo.value.code == 400
    assert "throttle_rte" in json.loads(excinfo.value.read())["message"]


def test_the_request_log_and_reset_are_reachable_over_http(emulator, bedrock_client):
    emulator.configure(latency_ms=1)
    bedrock_client.converse(modelId=NOVA, messages=MESSAGES)
    assert http(emulator, "/_emulator/requests") == {
        "requests": [
            {"operation": "Converse", "model_id": NOVA, "status": 200, "access_key": "testing", "region": "us-east-1"}
        ]
    }
    assert http(emulator, "/_emulator/reset", {})["default"]["latency_ms"] == 0
    assert len(emulator.requests) == 0


def test_an_unknown_path_is_an_unknown_operation(emulator):
    with pytest.raises(HTTPError) as excinfo:
        urllib.request.urlopen(emulator.url + "/model/x/invoke-with-bidirectional-stream")
    assert excinfo.value.code == 404
    assert excinfo.value.headers["x-amzn-ErrorType"].startswith("UnknownOperationException")
    assert [r.operation for r in emulator.requests] == ["Unknown"]


def test_construction_knobs_apply_and_stop_closes_the_port():
    with Emulator(throttle_rate=1.0) as emulator:
        client = aws_client(emulator, "bedrock-runtime")
        with pytest.raises(ClientError):
            client.converse(modelId=NOVA, messages=MESSAGES)
        url = emulator.url
    with pytest.raises(URLError):
        urllib.request.urlopen(url + "/_emulator/config", timeout=2)


def test_clients_built_from_the_environment_reach_the_emulator(aws_emulator_env):
    session = boto3.session.Session()
    answer = session.client("bedrock-runtime").converse(modelId=NOVA, messages=MESSAGES)
    assert answer["output"]["message"]["content"][0]["text"] == "Echo: Say hello"
    assert len(aws_emulator_env.requests) == 1


def test_roles_and_guardrails_can_be_defined_over_http(emulator, bedrock_client):
    role = "arn:aws:iam::222233334444:role/mailsaas-acme"
    http(emulator, "/_emulator/sts/roles", {"role_arn": role, "external_id": "ext-1"})
    http(emulator, "/_emulator/guardrails", {"guardrail_id": "gr-1", "words": ["hello"]})
    sts = aws_client(emulator, "sts")
    assert sts.assume_role(RoleArn=role, RoleSessionName="s1", ExternalId="ext-1")["Credentials"]["AccessKeyId"]
    answer = bedrock_client.converse(modelId=NOVA, messages=MESSAGES,
                                     guardrailConfig={"guardrailIdentifier": "gr-1", "guardrailVersion": "DRAFT"})  # fmt: skip
    assert answer["stopReason"] == "guardrail_intervened"  # "Say hello" is blocked on the way in
    with pytest.raises(HTTPError) as excinfo:
        http(emulator, "/_emulator/guardrails", {"words": ["x"]})
    assert excinfo.value.code == 400
