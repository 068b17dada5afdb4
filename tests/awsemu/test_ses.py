"""SES v2 SendEmail (raw content) through boto3 over HTTP: the message kept as sent and read back, SES's errors
for what it would refuse, knobs and the request log like every other operation, reset like every other store."""

import base64
import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.fixtures_aws import aws_client

RAW = (b"From: Ana <hello@acme.example>\r\nTo: Pat <pat@example.com>\r\nSubject: Hi\r\n"
       b"Message-ID: <1@acme.example>\r\n\r\nHello\r\n")  # fmt: skip


@pytest.fixture
def ses(emulator):
    return aws_client(emulator, "sesv2")


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_a_raw_message_is_kept_as_sent_and_answered_with_a_message_id(emulator, ses):
    reply = ses.send_email(Content={"Raw": {"Data": RAW}}, Destination={"ToAddresses": ["pat@example.com"]},
                           ConfigurationSetName="tracking")  # fmt: skip
    (sent,) = emulator.ses.messages()
    assert reply["MessageId"] == sent.message_id and sent.message_id.endswith("-000000")
    assert sent.raw == RAW and sent.destinations == ["pat@example.com"] and sent.configuration_set == "tracking"
    assert sent.message["Subject"] == "Hi" and sent.from_address == "Ana <hello@acme.example>"
    assert [(r.operation, r.status, r.region) for r in emulator.requests] == [("SendEmail", 200, "us-east-1")]
    with urllib.request.urlopen(f"{emulator.url}/_emulator/ses/messages") as page:
        (listed,) = json.load(page)["messages"]
    assert base64.b64decode(listed["Raw"]) == RAW and listed["MessageId"] == sent.message_id
    emulator.reset()
    assert emulator.ses.messages() == []


def test_recipients_come_from_the_headers_without_a_destination(emulator, ses):
    ses.send_email(Content={"Raw": {"Data": RAW}})
    assert emulator.ses.messages()[0].destinations == ["pat@example.com"]


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"Subject: nobody\r\n\r\nHello\r\n", "MessageRejected"),  # no recipient anywhere
        (b"To: pat@example.com\r\nSubject: no sender\r\n\r\nHello\r\n", "MessageRejected"),
    ],
)
def test_what_ses_would_refuse_is_refused(emulator, ses, raw, code):
    with pytest.raises(ClientError) as raised:
        ses.send_email(Content={"Raw": {"Data": raw}})
    assert code_of(raised) == code and emulator.ses.messages() == []


def test_a_simple_message_is_not_what_the_emulator_takes(emulator, ses):
    simple = {"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hello"}}}}
    with pytest.raises(ClientError) as raised:
        ses.send_email(FromEmailAddress="a@acme.example", Destination={"ToAddresses": ["p@example.com"]},
                       Content=simple)  # fmt: skip
    assert code_of(raised) == "BadRequestException"


def test_knobs_fail_sends_like_any_operation(emulator, ses):
    emulator.configure("SendEmail", fail_next=1, fail_with="throttle")
    with pytest.raises(ClientError) as raised:
        ses.send_email(Content={"Raw": {"Data": RAW}})
    assert code_of(raised) == "TooManyRequestsException" and emulator.ses.messages() == []
    ses.send_email(Content={"Raw": {"Data": RAW}})
    assert len(emulator.ses.messages()) == 1
    assert [r.status for r in emulator.requests] == [429, 200]
