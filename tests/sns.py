"""SNS as AWS signs it, for tests: an RSA key and a self-signed certificate made with cryptography, messages in
SNS's real HTTP format wrapping SES's real notification JSON, signed over the canonical text as AWS documents it
(written out here independently of campaigns.sns). Only the certificate download, AWS's side, is replaced."""

import base64
import functools
import json
import uuid
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

REGION = "us-east-1"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-notifications"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"


@functools.cache
def key_and_cert(common_name: str = "sns.amazonaws.com"):
    """An RSA key and its self-signed certificate, made once per name and reused: a 2048-bit key takes a tenth of a
    second or more to make, and a new one for every test was most of their set-up."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert.public_bytes(serialization.Encoding.PEM)


def forger_key():
    """A key that is not the signer's (one made for another name)."""
    return key_and_cert("forger.example")[0]


class Signer:
    def __init__(self):
        self.key, self.pem = key_and_cert()
        self.fetched: list[str] = []
        self.certs = {CERT_URL: self.pem}

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if url not in self.certs:
            raise OSError(f"404 for {url}")
        return self.certs[url]

    def sign(self, message: dict, key=None, version: str = "1") -> dict:
        """Sign as SNS does: "key\\nvalue\\n" for the type's keys in byte order, Subject only when present."""
        if message["Type"] == "Notification":
            keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        text = "".join(f"{k}\n{message[k]}\n" for k in keys if message.get(k) is not None).encode()
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = (key or self.key).sign(text, padding.PKCS1v15(), algorithm)
        return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode(),
                "SigningCertURL": message.get("SigningCertURL", CERT_URL)}  # fmt: skip


def install(monkeypatch) -> Signer:
    """A signer whose certificate campaigns.sns downloads (the download replaced, and nothing kept from before)."""
    from campaigns import sns as sns_module

    signer = Signer()
    monkeypatch.setattr(sns_module, "cert_fetch", signer.fetch)
    sns_module.certs_forget()
    return signer


def stamp(at: datetime | None = None) -> str:
    at = at or datetime.now(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def notification(ses_event: dict, *, at: datetime | None = None, subject: str | None = None) -> dict:
    message_id = str(uuid.uuid4())
    message = {
        "Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC, "Message": json.dumps(ses_event),
        "Timestamp": stamp(at),
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:{uuid.uuid4()}",
    }  # fmt: skip
    if subject is not None:
        message["Subject"] = subject
    return message


def confirmation(kind: str = "SubscriptionConfirmation") -> dict:
    token = uuid.uuid4().hex * 4
    return {
        "Type": kind, "MessageId": str(uuid.uuid4()), "Token": token, "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit the "
        "SubscribeURL included in this message.",
        "SubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}",
        "Timestamp": stamp(),
    }  # fmt: skip


def mail_object(message_id: str, to: str) -> dict:
    """SES's `mail` object, as its notifications carry it."""
    return {
        "timestamp": stamp(), "source": "hello@acme.example",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/acme.example", "sourceIp": "203.0.113.7",
        "sendingAccountId": "123456789012", "messageId": message_id, "destination": [to],
        "headersTruncated": False,
        "headers": [{"name": "From", "value": "Ana <hello@acme.example>"}, {"name": "To", "value": to}],
        "commonHeaders": {"from": ["Ana <hello@acme.example>"], "to": [to], "subject": "Picks for you"},
    }  # fmt: skip


def bounce(message_id: str, to: str, bounce_type: str = "Permanent", sub_type: str = "General",
           diagnostic: str = "smtp; 550 5.1.1 user unknown") -> dict:  # fmt: skip
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type, "bounceSubType": sub_type,
            "bouncedRecipients": [{"emailAddress": to, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": diagnostic}],
            "timestamp": stamp(), "feedbackId": f"0100{uuid.uuid4().hex[:12]}-000000",
            "remoteMtaIp": "127.0.2.0", "reportingMTA": "dsn; a27-23.smtp-out.us-west-2.amazonses.com",
        },
        "mail": mail_object(message_id, to),
    }  # fmt: skip


def complaint(message_id: str, to: str) -> dict:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)", "complainedRecipients": [{"emailAddress": to}],
            "complaintFeedbackType": "abuse", "arrivalDate": stamp(), "timestamp": stamp(),
            "feedbackId": f"0100{uuid.uuid4().hex[:12]}-000000",
        },
        "mail": mail_object(message_id, to),
    }  # fmt: skip


def delivery(message_id: str, to: str) -> dict:
    return {
        "notificationType": "Delivery",
        "delivery": {
            "timestamp": stamp(), "processingTimeMillis": 546, "recipients": [to],
            "smtpResponse": "250 ok:  Message 64111812 accepted", "reportingMTA": "a8-70.smtp-out.amazonses.com",
            "remoteMtaIp": "127.0.2.0",
        },
        "mail": mail_object(message_id, to),
    }  # fmt: skip


def received(raw: bytes, to: str) -> dict:
    """SES receiving's notification for a receipt rule with an SNS action (the message inside, base64)."""
    return {
        "notificationType": "Received",
        "mail": {**mail_object(str(uuid.uuid4()), to), "source": "pat@example.com"},
        "receipt": {
            "timestamp": stamp(), "processingTimeMillis": 300, "recipients": [to],
            "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"}, "dmarcVerdict": {"status": "PASS"},
            "action": {"type": "SNS", "topicArn": TOPIC, "encoding": "BASE64"},
        },
        "content": base64.b64encode(raw).decode(),
    }  # fmt: skip


def post(client, path: str, message, **extra):
    body = message if isinstance(message, str | bytes) else json.dumps(message)
    kind = message.get("Type", "") if isinstance(message, dict) else "Notification"
    message_id = message.get("MessageId", "") if isinstance(message, dict) else ""
    return client.post(path, data=body, content_type="text/plain; charset=UTF-8",
                       HTTP_X_AMZ_SNS_MESSAGE_TYPE=kind, HTTP_X_AMZ_SNS_MESSAGE_ID=message_id,
                       HTTP_X_AMZ_SNS_TOPIC_ARN=TOPIC, **extra)  # fmt: skip


def opened(message_id: str, to: str, user_agent: str = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15") -> dict:
    """SES event publishing's Open (a configuration set with open tracking): it names the message, not the reader."""
    return {
        "eventType": "Open",
        "mail": mail_object(message_id, to),
        "open": {"ipAddress": "192.0.2.1", "timestamp": stamp(), "userAgent": user_agent},
    }  # fmt: skip


def clicked(message_id: str, to: str, link: str = "https://acme.example/films/9?utm_source=email") -> dict:
    return {
        "eventType": "Click",
        "mail": mail_object(message_id, to),
        "click": {"ipAddress": "192.0.2.1", "link": link, "linkTags": {"campaign": ["weekly"]}, "timestamp": stamp(),
                  "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
    }  # fmt: skip
