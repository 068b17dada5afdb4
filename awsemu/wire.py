"""The AWS wire details the emulated services share: who signed a request, replies and modeled errors in
each of the four protocols the services use (rest-json, JSON 1.1, rest-xml for S3, query for STS)."""

import json
import re
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
JSON11 = "application/x-amz-json-1.1"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class AwsError(Exception):
    """An error the real service answers with; botocore raises it as ClientError with this code."""

    def __init__(self, code: str, status: int, message: str):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Caller:
    """What the SigV4 Authorization header says: the access key, and the region and service it signed for."""

    access_key: str = ""
    region: str = DEFAULT_REGION
    service: str = ""
    session_token: str = ""


def caller_of(request: Request) -> Caller:
    match = _CREDENTIAL.search(request.headers.get("Authorization", ""))
    token = request.headers.get("X-Amz-Security-Token", "")
    if match is None:
        return Caller(session_token=token)
    return Caller(*match.groups(), session_token=token)


def json_response(payload: dict, status: int = 200, content_type: str = "application/json") -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    return Response(json.dumps(payload, default=str), status=status, headers=headers, content_type=content_type)


def xml_response(body: str, status: int = 200) -> Response:
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return Response(text, status=status, headers={"x-amz-request-id": uuid.uuid4().hex}, content_type="application/xml")


def error_response(error: AwsError, protocol: str = "rest-json", method: str = "POST") -> Response:
    """The error as the named protocol carries it, so botocore parses the same code and message."""
    if protocol == "json":
        return json_response({"__type": error.code, "message": error.message}, error.status, JSON11)
    if protocol == "rest-xml":
        if method == "HEAD":  # HEAD replies have no body; botocore names the error by its status
            return Response(status=error.status, headers={"x-amz-request-id": uuid.uuid4().hex})
        body = f"<Error><Code>{error.code}</Code><Message>{escape(error.message)}</Message></Error>"
        return xml_response(body, error.status)
    if protocol == "query":
        kind = "Receiver" if error.status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>{kind}</Type><Code>{error.code}</Code>'
            f"<Message>{escape(error.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return xml_response(body, error.status)
    response = json_response({"message": error.message}, error.status)
    # rest-json services name the error in this header, with a namespace suffix botocore strips at the colon.
    response.headers["x-amzn-ErrorType"] = f"{error.code}:http://internal.amazon.com/coral/awsemu/"
    return response


def read_json(body: bytes, error_code: str) -> dict:
    """The request body as a JSON object, or the service's validation error."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise AwsError(error_code, 400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise AwsError(error_code, 400, "The request body must be a JSON object.")
    return data


def parse_s3_uri(uri: str, error_code: str = "ValidationException") -> tuple[str, str]:
    """(bucket, key) from "s3://bucket/key"; the key may be empty or a prefix."""
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise AwsError(error_code, 400, f"{uri!r} is not an S3 URI (s3://bucket/key).")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key
