"""AWS event-stream framing (`application/vnd.amazon.eventstream`), as ConverseStream answers.

Each message is a prelude (total length, headers length, CRC32 of both), string headers, a JSON payload and a
CRC32 of everything before it; botocore checks both checksums.
"""

import json
import struct
import zlib

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7  # the header value type for UTF-8 strings


def event(event_type: str, payload: dict) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return message(headers, json.dumps(payload).encode())


def exception(error_type: str, message_text: str) -> bytes:
    """A modeled error after the stream started; `error_type` is the member name, e.g. "throttlingException"."""
    headers = {":exception-type": error_type, ":content-type": "application/json", ":message-type": "exception"}
    return message(headers, json.dumps({"message": message_text}).encode())


def message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _header(name: str, value: str) -> bytes:
    name_bytes, value_bytes = name.encode(), value.encode()
    return struct.pack(">B", len(name_bytes)) + name_bytes + struct.pack(">BH", _STRING, len(value_bytes)) + value_bytes
