"""The AWS rest-json wire details both emulated services share: JSON replies and modeled errors."""

import json
import uuid

from werkzeug.wrappers import Response


class AwsError(Exception):
    """An error the real service answers with; botocore raises it as ClientError with this code."""

    def __init__(self, code: str, status: int, message: str):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def json_response(payload: dict, status: int = 200) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    return Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")


def error_response(error: AwsError) -> Response:
    response = json_response({"message": error.message}, error.status)
    # Real services name the error in this header, with a namespace suffix botocore strips at the colon.
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
