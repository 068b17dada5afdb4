"""ConverseStream (event-stream framing) and InvokeModel (native bodies, token-count headers) through boto3."""

import json
import struct
import urllib.request
import zlib

import pytest
from botocore.exceptions import ClientError

from awsemu import eventstream
from tests.awsemu import MOVIES, email_prompt

NOVA = "amazon.nova-lite-v1:0"
SONNET_37 = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": email_prompt()}]}]


def anthropic_body(**overrides):
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 800,
            "system": "You write marketing email.", "messages": [{"role": "user", "content": email_prompt()}]}  # fmt: skip
    return json.dumps({**body, **overrides})


def test_converse_stream_events_carry_the_same_text_and_usage(bedrock_client):
    streamed = bedrock_client.converse_stream(modelId=NOVA, messages=MESSAGES, inferenceConfig={"maxTokens": 800})
    events = list(streamed["stream"])
    kinds = [next(iter(event)) for event in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert kinds.count("contentBlockDelta") > 5
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    whole = bedrock_client.converse(modelId=NOVA, messages=MESSAGES, inferenceConfig={"maxTokens": 800})
    assert text == whole["output"]["message"]["content"][0]["text"]
    assert all(movie["title"] in text for movie in MOVIES)
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"] == whole["usage"]


def test_event_stream_frames_have_valid_preludes_and_checksums():
    frame = eventstream.event("messageStop", {"stopReason": "end_turn"})
    total, headers_length, prelude_crc = struct.unpack(">III", frame[:12])
    assert total == len(frame) and prelude_crc == zlib.crc32(frame[:8])
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    assert json.loads(frame[12 + headers_length : -4]) == {"stopReason": "end_turn"}
    assert b":event-type" in frame[12 : 12 + headers_length]


def test_converse_stream_errors_before_the_stream_are_plain_errors(emulator, bedrock_client):
    emulator.configure(model_id=NOVA, fail_next=1)
    with pytest.raises(ClientError) as excinfo:
        bedrock_client.converse_stream(modelId=NOVA, messages=MESSAGES)
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert [(r.operation, r.status) for r in emulator.requests] == [("ConverseStream", 429)]


def test_invoke_model_anthropic_body_and_token_headers(emulator, bedrock_client):
    answer = bedrock_client.invoke_model(modelId=SONNET_37, body=anthropic_body())
    reply = json.loads(answer["body"].read())
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    assert reply["type"] == "message" and reply["role"] == "assistant"
    assert reply["model"] == "claude-3-7-sonnet-20250219" and reply["stop_reason"] == "end_turn"
    assert reply["content"][0]["type"] == "text" and "Maria" in reply["content"][0]["text"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) == reply["usage"]["input_tokens"] > 100
    assert int(headers["x-amzn-bedrock-output-token-count"]) == reply["usage"]["output_tokens"] > 10
    assert "x-amzn-bedrock-invocation-latency" in headers
    assert emulator.requests.filter(operation="InvokeModel")[0].model_id == SONNET_37


def test_invoke_model_nova_body(bedrock_client):
    body = {"schemaVersion": "messages-v1", "messages": MESSAGES, "inferenceConfig": {"max_new_tokens": 10}}
    reply = json.loads(bedrock_client.invoke_model(modelId=NOVA, body=json.dumps(body))["body"].read())
    assert reply["stopReason"] == "max_tokens" and reply["usage"]["outputTokens"] == 10
    assert reply["output"]["message"]["content"][0]["text"].startswith("<subject>")


@pytest.mark.parametrize(
    "body, message",
    [
        (anthropic_body(anthropic_version="2023-06-01"), "anthropic_version"),
        (json.dumps({"anthropic_version": "bedrock-2023-05-31", "messages": []}), "required key [max_tokens]"),
        (anthropic_body(inferenceConfig={"maxTokens": 5}), "extraneous key [inferenceConfig]"),
    ],
)
def test_invoke_model_rejects_malformed_anthropic_bodies(bedrock_client, body, message):
    with pytest.raises(ClientError) as excinfo:
        bedrock_client.invoke_model(modelId=SONNET_37, body=body)
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    assert message in excinfo.value.response["Error"]["Message"]
    assert excinfo.value.response["Error"]["Message"].startswith("Malformed input request")


def test_invoke_model_still_needs_an_inference_profile_for_claude_37(bedrock_client):
    with pytest.raises(ClientError) as excinfo:
        bedrock_client.invoke_model(modelId=SONNET_37.removeprefix("us."), body=anthropic_body())
    assert "inference profile" in excinfo.value.response["Error"]["Message"]


def test_converse_stream_over_raw_http_is_event_stream(emulator):
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "Say hello"}]}]}).encode()
    request = urllib.request.Request(f"{emulator.url}/model/{NOVA}/converse-stream", data=body, method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"] == eventstream.CONTENT_TYPE
        raw = response.read()
    assert raw.count(b":message-type") == 5  # start, one delta, stop, message stop, metadata
