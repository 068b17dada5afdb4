"""Amazon SES v2 `SendEmail` with raw content (rest-json, `POST /v2/email/outbound-emails`), as django-anymail's
Amazon SES backend calls it. Each message taken is kept exactly as it arrived, so a test can read it back (through
`messages()` or the side door `GET /_emulator/ses/messages`); the reply carries a MessageId shaped like SES's."""

import base64
import binascii
import secrets
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.utils import getaddresses

from awsemu.wire import AwsError, read_json

FAULTS = {
    "throttle": ("TooManyRequestsException", 429, "Too many requests."),
    "timeout": ("RequestTimeout", 408, "Request timed out."),
    "internal": ("InternalFailure", 500, "The request processing has failed because of an unknown error."),
    "unavailable": ("ServiceUnavailable", 503, "Service is unavailable."),
}
MAX_RAW_BYTES = 40 * 1024 * 1024  # SES v2's limit on a raw message, after base64 decoding
MAX_RECIPIENTS = 50


@dataclass(frozen=True)
class SentMessage:
    message_id: str
    raw: bytes
    destinations: list[str]
    from_address: str
    region: str
    account: str
    configuration_set: str = ""
    at: float = field(default_factory=time.time)

    @property
    def message(self):
        return message_from_bytes(self.raw, policy=policy.default)

    def as_dict(self) -> dict:
        return {"MessageId": self.message_id, "Raw": base64.b64encode(self.raw).decode(),
                "Destinations": self.destinations, "FromEmailAddress": self.from_address, "Region": self.region,
                "Account": self.account, "ConfigurationSetName": self.configuration_set}  # fmt: skip


class SesStore:
    """The messages SES took, in order. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sent: list[SentMessage] = []

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()

    def messages(self) -> list[SentMessage]:
        with self._lock:
            return list(self._sent)

    def send_email(self, body: bytes, region: str, account: str) -> dict:
        request = read_json(body, "BadRequestException")
        content = request.get("Content")
        if not isinstance(content, dict) or not content:
            raise AwsError("BadRequestException", 400, "Content is required.")
        if "Raw" not in content:
            raise AwsError("BadRequestException", 400, "The emulator's SendEmail takes Content.Raw only.")
        data = (content.get("Raw") or {}).get("Data") if isinstance(content.get("Raw"), dict) else None
        if not isinstance(data, str) or not data:
            raise AwsError("BadRequestException", 400, "Content.Raw.Data is required.")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise AwsError("BadRequestException", 400, "Content.Raw.Data is not valid base64.") from None
        if len(raw) > MAX_RAW_BYTES:
            raise AwsError("MessageRejected", 400, "Message length is more than 40 megabytes.")
        parsed = message_from_bytes(raw, policy=policy.compat32)
        destination = request.get("Destination") or {}
        if not isinstance(destination, dict):
            raise AwsError("BadRequestException", 400, "Destination must be an object.")
        recipients = [a for key in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destination.get(key) or []]
        if not recipients:  # SES reads them from the message's headers
            recipients = [addr for _, addr in getaddresses(parsed.get_all("To", []) + parsed.get_all("Cc", []))]
        if not recipients or not all(isinstance(a, str) and "@" in a for a in recipients):
            raise AwsError("MessageRejected", 400, "Missing final '@domain'")
        if len(recipients) > MAX_RECIPIENTS:
            raise AwsError("MessageRejected", 400, f"Recipient count exceeds {MAX_RECIPIENTS}.")
        sender = request.get("FromEmailAddress") or parsed.get("From", "")
        if "@" not in str(sender):
            raise AwsError("MessageRejected", 400, "Missing final '@domain'")
        message_id = f"0100{secrets.token_hex(6)}-{secrets.token_hex(4)}-{secrets.token_hex(2)}-" \
                     f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}-000000"  # fmt: skip
        sent = SentMessage(message_id, raw, recipients, str(sender), region, account,
                           str(request.get("ConfigurationSetName") or ""))  # fmt: skip
        with self._lock:
            self._sent.append(sent)
        return {"MessageId": message_id}
