"""Amazon SNS message signatures, checked before anything an SNS message says is believed (anymail 15.2's SES
webhooks check only its headers: see "Future: Verify SNS message signature" in anymail/webhooks/amazon_ses.py).

As AWS documents it (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html): the signed
text is "key\\nvalue\\n" for Message, MessageId, Subject (only when present), Timestamp, TopicArn and Type in a
Notification; Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn and Type in a SubscriptionConfirmation
or UnsubscribeConfirmation. SignatureVersion 1 signs it with RSA and SHA1, 2 with SHA256 (PKCS#1 v1.5). The key is
in the certificate at SigningCertURL, which must be https on sns.<region>.amazonaws.com (or .com.cn) with a .pem
path; it is fetched over HTTPS with a short timeout and kept. With SNS_TOPIC_ARNS set, only those topics count."""

import base64
import binascii
import re
import threading
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
OPTIONAL = {"Subject"}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
MAX_CERT_BYTES = 64 * 1024

_certs: dict[str, x509.Certificate] = {}
_certs_lock = threading.Lock()


class SnsRefused(Exception):
    """The message is not one AWS signed for us; the text says why (and is safe to answer with)."""


def signed_text(message: dict) -> bytes:
    """The canonical text SNS signs for this message."""
    kind = message.get("Type")
    if kind not in SIGNED_KEYS:
        raise SnsRefused(f"unknown SNS message Type {str(kind)[:60]!r}")
    lines = []
    for key in SIGNED_KEYS[kind]:
        if message.get(key) is None:  # absent, or null (SNS's JSON for a message without a subject)
            if key in OPTIONAL:
                continue
            raise SnsRefused(f"the SNS message has no {key}")
        value = message[key]
        if not isinstance(value, str):
            raise SnsRefused(f"the SNS message's {key} is not text")
        lines.append(f"{key}\n{value}\n")
    return "".join(lines).encode()


def cert_url_check(url) -> str:
    if not isinstance(url, str) or not url:
        raise SnsRefused("the SNS message has no SigningCertURL")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not CERT_HOST.match(host) or parts.port not in (None, 443):
        raise SnsRefused(f"SigningCertURL {url[:200]!r} is not https://sns.<region>.amazonaws.com")
    if not parts.path.endswith(".pem") or parts.username or parts.password:
        raise SnsRefused(f"SigningCertURL {url[:200]!r} does not name a .pem certificate")
    return url


def cert_fetch(url: str) -> bytes:
    """AWS's signing certificate, over HTTPS (the certificate chain checked by the default context). Tests
    replace this function: it is the one part that is AWS's side."""
    with urllib.request.urlopen(url, timeout=settings.SNS_CERT_TIMEOUT) as reply:  # noqa: S310 - https, checked
        return reply.read(MAX_CERT_BYTES + 1)


def signing_cert(url: str) -> x509.Certificate:
    with _certs_lock:
        cached = _certs.get(url)
    if cached is not None:
        return cached
    try:
        pem = cert_fetch(url)
    except Exception as exc:
        raise SnsRefused(f"could not fetch the signing certificate {url[:200]!r}: {type(exc).__name__}") from None
    if len(pem) > MAX_CERT_BYTES:
        raise SnsRefused("the signing certificate is implausibly large")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise SnsRefused(f"{url[:200]!r} is not a PEM certificate") from None
    with _certs_lock:
        _certs[url] = cert
    return cert


def certs_forget() -> None:
    with _certs_lock:
        _certs.clear()


def sns_verify(message) -> None:
    """Raise SnsRefused unless AWS signed exactly this message (and its topic is one we take)."""
    if not isinstance(message, dict):
        raise SnsRefused("the body is not an SNS message (a JSON object)")
    allowed = settings.SNS_TOPIC_ARNS
    if allowed and message.get("TopicArn") not in allowed:
        raise SnsRefused(f"topic {str(message.get('TopicArn'))[:200]!r} is not in SNS_TOPIC_ARNS")
    version = message.get("SignatureVersion")
    if version not in HASHES:
        raise SnsRefused(f"SignatureVersion {str(version)[:20]!r} is not 1 or 2")
    signature = message.get("Signature")
    if not isinstance(signature, str) or not signature:
        raise SnsRefused("the SNS message has no Signature")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SnsRefused("the Signature is not base64") from None
    text = signed_text(message)
    cert = signing_cert(cert_url_check(message.get("SigningCertURL")))
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SnsRefused("the signing certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsRefused("the signing certificate's key is not RSA")
    try:
        key.verify(raw_signature, text, padding.PKCS1v15(), HASHES[version]())
    except InvalidSignature:
        raise SnsRefused("the SNS signature does not match the message") from None
