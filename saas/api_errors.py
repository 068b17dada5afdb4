"""Every API error in one envelope (the `Error` schema in saas/schema.py):

    {"error": {"code": "validation_error", "message": "email: Enter a valid email address.",
               "fields": {"email": ["Enter a valid email address."]}}}

`code` is stable and machine-readable, `message` is for people, `fields` (validation only) keeps DRF's per-field
messages (rows of a list by index), `details` carries what a client can act on (`duplicate_of`, `used_by`, …).
Errors Django raises below the views are mapped too: a row other rows depend on is a 409 naming them, a model's own
validation a 400, a body over the size limit a 413; anything unexpected is a 500 that says nothing of the code."""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation, ValidationError
from django.core.signals import got_request_exception
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from saas.schema import ERROR_CODES

logger = logging.getLogger("saas.api")
NAMED = 20  # dependants listed in the answer; the count says how many there are in all
SERVER_ERROR = "Something went wrong on our side; it has been logged. Retry later, or tell us the time it happened."


class Conflict(exceptions.APIException):
    """409: the object's state does not allow this; `details` says more when a client can act on it."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"

    def __init__(self, message: str, **details):
        super().__init__(message, "conflict")
        self.details = details


class UpstreamError(exceptions.APIException):
    """502: a service the request needs (the mail server) refused it; the message says what it answered."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "upstream_error"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is larger than this server accepts."


def envelope(code: str, message: str, *, fields=None, details=None) -> dict:
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status_code: int, code: str, message: str, *, fields=None, details=None, headers=None):
    return Response(envelope(code, message, fields=fields, details=details), status=status_code, headers=headers)


def api_exception_handler(exc, context):
    if isinstance(exc, ProtectedError | RestrictedError):
        return in_use(exc)
    if isinstance(exc, ValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return validation_response(fields)
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc) or "The request is malformed.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return validation_response(detail)
    if isinstance(exc, exceptions.APIException):
        response = exception_handler(exc, context)  # DRF's: its headers (WWW-Authenticate, Retry-After)
        code = exc.default_code if exc.default_code in ERROR_CODES else "error"
        response.data = envelope(code, _text(exc.detail), details=getattr(exc, "details", None))
        return response
    # Anything else is our bug: logged (and signalled, as Django would, so test clients re-raise it), never shown.
    request = context.get("request")
    logger.error("API error on %s", getattr(request, "path", "?"), exc_info=exc)
    set_rollback()
    got_request_exception.send(sender=None, request=getattr(request, "_request", request))
    return error_response(500, "server_error", SERVER_ERROR)


def validation_response(fields) -> Response:
    set_rollback()
    return error_response(400, "validation_error", _summary(fields), fields=_plain(fields))


def _plain(detail):
    """DRF's ErrorDetail strings as plain JSON: lists, dicts and strings."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        return [_plain(value) for value in detail]
    return str(detail)


def _summary(fields) -> str:
    """The first problem, named by its field path: `email: Enter a valid email address.` (+ how many more)."""
    problems = list(_walk(fields, ""))
    if not problems:
        return "Invalid input."
    where, first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (f"{where}: {first}" if where and where != "non_field_errors" else first) + more


def _walk(detail, path: str):
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(detail, list | tuple):
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list | tuple)
            yield from _walk(value, f"{path}[{index}]" if nested else path)
    else:
        yield path, str(detail)


def _text(detail) -> str:
    if isinstance(detail, dict | list | tuple):
        return "; ".join(message for _, message in _walk(detail, ""))
    return str(detail)


def in_use(exc: ProtectedError | RestrictedError) -> Response:
    """409: the row is still used; the answer says by what, so the caller can change or delete those first."""
    users = sorted(exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects, key=str)
    kinds = sorted({str(type(row)._meta.verbose_name_plural) for row in users})
    named = [{"type": type(row)._meta.model_name, "id": row.pk, "name": str(row)} for row in users[:NAMED]]
    listed = ", ".join(repr(str(row)) for row in users[:NAMED])
    set_rollback()
    message = f"still used by {len(users)} {' and '.join(kinds)}: {listed}; change or delete them first"
    return error_response(409, "conflict", message, details={"used_by": named, "used_by_count": len(users)})


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


@csrf_exempt  # the API's callers hold keys, not cookies; a POST to a wrong path is a 404, not a CSRF page
def not_found(request, exception=None):
    """Django's 404 (a path no route matches) for the API in the envelope; HTML elsewhere."""
    if _is_api(request):
        message = "No such path in this API; see /api/docs/."
        if not request.path.endswith("/") and _routed(request.path + "/"):
            message = f"No such path; every API path ends in a slash: {request.path}/"
        return JsonResponse(envelope("not_found", message), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def _routed(path: str) -> bool:
    from django.urls import Resolver404, resolve

    try:
        return resolve(path).func is not not_found
    except Resolver404:
        return False


def server_error(request):
    """Django's 500 (an error outside DRF's views) for the API in the envelope, without a traceback."""
    if _is_api(request):
        return JsonResponse(envelope("server_error", SERVER_ERROR), status=500)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)
