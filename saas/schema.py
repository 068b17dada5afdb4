"""The API's OpenAPI 3 document (drf-spectacular): the error envelope as one component, added to every operation
with the answers it can give, and the API key as the security scheme."""

from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_view_model
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers

ERROR_CODES = {
    "validation_error": "the request's fields (or query parameters) are invalid; `fields` says which and why",
    "parse_error": "the body is not the JSON (or form) it says it is",
    "not_authenticated": "no API key was given",
    "authentication_failed": "the API key is unknown or revoked",
    "permission_denied": "the key's role may not do this",
    "not_found": "no such object in your tenant (another tenant's objects are not found either)",
    "method_not_allowed": "the path does not take this method",
    "not_acceptable": "the Accept header asks for something other than JSON",
    "conflict": "the object's state does not allow this now (or it would duplicate one); `details` may say more",
    "idempotency_key_in_flight": "a request with this `Idempotency-Key` is still running; retry after `Retry-After`",
    "idempotency_key_reused": "this `Idempotency-Key` was sent with another request (method, path or body)",
    "request_too_large": "the body is larger than the server accepts",
    "unsupported_media_type": "the Content-Type is not JSON, form or multipart",
    "throttled": "too many requests; retry after the `Retry-After` header's seconds",
    "upstream_error": "a service the request needs (the mail server) refused it; the message says what it answered",
    "server_error": "our fault: nothing is leaked, the error is logged; retry later",
    "error": "any other refusal; the HTTP status says which",
}


ERROR_CODE_CHOICES = list(ERROR_CODES)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=ERROR_CODE_CHOICES,
        help_text="A stable, machine-readable code: "
        + "; ".join(f"`{code}`: {meaning}" for code, meaning in ERROR_CODES.items()),
    )
    message = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        required=False,
        help_text="Validation only: each invalid field (or `non_field_errors`) with its messages; rows of a list "
        "are keyed by their index.",
    )
    details = serializers.DictField(
        required=False, help_text="More that a client can act on, e.g. `duplicate_of` or `used_by`."
    )


class ErrorSerializer(serializers.Serializer):
    """Every error the API answers: `{"error": {"code": …, "message": …, "fields"?: {…}, "details"?: {…}}}`."""

    error = ErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid input (`validation_error` with `fields`, or `parse_error`).",
    "401": "No API key, or one that is unknown or revoked.",
    "403": "The key's role may not do this.",
    "404": "Not found in your tenant.",
    "409": "The object's state does not allow this.",
    "409-post": "The object's state does not allow this; or the `Idempotency-Key` is in use by a request still "
    "running (`idempotency_key_in_flight`, with `Retry-After`) or was sent with another request "
    "(`idempotency_key_reused`).",
    "413": "The body is too large.",
    "415": "Unsupported Content-Type.",
    "429": "Too many requests for your account's plan in the window (`throttled`, `details`: `limit`, "
    "`window_seconds`); retry after `Retry-After` seconds.",
}

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~](?:[ -~]{0,253}[!-~])?$"},
    OpenApiParameter.HEADER,
    description="Optional; a key of your choice (e.g. a UUID) that makes a retry safe: for 24 h, the same key with "
    "the same request gets the first answer again (`Idempotent-Replayed: true`) instead of doing the work twice; "
    "the same key with another request is a 409. Keys are your account's own.",
)
IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    {"type": "string", "enum": ["true", "false"]},
    OpenApiParameter.HEADER,
    response=["200", "201", "202", "207"],
    description="With an `Idempotency-Key`: `true` when this is the stored answer to an earlier request.",
)
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    {"type": "integer", "minimum": 1},
    OpenApiParameter.HEADER,
    response=["429"],
    description="Seconds to wait before retrying.",
)
RETRY_AFTER_IN_FLIGHT = OpenApiParameter(
    "Retry-After",
    {"type": "integer", "minimum": 1},
    OpenApiParameter.HEADER,
    response=["409"],
    description="On `idempotency_key_in_flight` only: seconds to wait before retrying.",
)

VALIDATION_EXAMPLE = OpenApiExample(
    "validation_error",
    value={
        "error": {
            "code": "validation_error",
            "message": "email: Enter a valid email address.",
            "fields": {"email": ["Enter a valid email address."]},
        }
    },  # fmt: skip
    response_only=True,
    status_codes=["400"],
)


class ApiAutoSchema(AutoSchema):
    """Adds the error answers each operation can give (in the one envelope), and keeps list mechanics (filters,
    cursor) to the list actions and the actions a view names in `paginated_actions`."""

    def _action(self) -> str | None:
        return getattr(self.view, "action", None)

    def get_filter_backends(self):
        return super().get_filter_backends() if self._action() == "list" else []

    def _get_paginator(self):
        paged = self._action() == "list" or self._action() in getattr(self.view, "paginated_actions", ())
        return super()._get_paginator() if paged else None

    def get_auth(self):
        """The key goes in either header: two alternatives, not both at once."""
        return [{name: scopes} for requirement in super().get_auth() for name, scopes in requirement.items()]

    def get_override_parameters(self):
        post = [IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, RETRY_AFTER_IN_FLIGHT] if self.method == "POST" else []
        headers = [RETRY_AFTER, *post]
        return [*super().get_override_parameters(), *headers]

    def _error_codes(self) -> list[str]:
        writes = self.method in ("POST", "PUT", "PATCH")
        codes = ["401"]
        if writes or self._action() == "list" or self._get_paginator():
            codes.append("400")
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            codes.append("403")
        if "{" in self.path:
            codes.append("404")
        if self.method in ("DELETE", "POST"):
            codes.append("409")
        if writes:
            codes += ["413", "415"]
        return [*codes, "429"]

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                post = code == "409" and self.method == "POST"
                responses[code]["description"] = ERROR_DESCRIPTIONS["409-post" if post else code]
        return dict(sorted(responses.items()))

    def get_examples(self):
        examples = super().get_examples()
        if self.method in ("POST", "PUT", "PATCH") and not any(e.name == VALIDATION_EXAMPLE.name for e in examples):
            examples = [*examples, VALIDATION_EXAMPLE]
        return examples


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """tenants.auth.ApiKeyAuthentication reads `Authorization: Bearer <key>`, else `X-API-Key: <key>`."""

    target_class = "tenants.auth.ApiKeyAuthentication"
    name = ["ApiKeyBearer", "ApiKeyHeader"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer ms_…`: the tenant's API key."},
            {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same key, in its own header."},
        ]


class ScopedDjangoFilterExtension(DjangoFilterExtension):
    """drf-spectacular's django-filter support, asking the unscoped manager for its (empty) queryset: the default
    manager refuses any query outside a tenant scope, and the generator has no tenant."""

    priority = 1

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs):
        model = get_view_model(auto_schema.view)
        if not model:
            return []
        filterset_class = self.target.get_filterset_class(auto_schema.view, model.dangerously_unscoped.none())
        if not filterset_class:
            return []
        parameters = []
        for name, field in filterset_class.base_filters.items():
            parameters += self.resolve_filter_field(auto_schema, model, filterset_class, name, field)
        return parameters


class OneOrMany(serializers.Serializer):
    """For the schema only: a body that is one `row` object or a list of up to `max_items` of them (with `strings`,
    a list may also hold plain strings, e.g. addresses)."""

    def __init__(self, row, *, name: str, max_items: int, strings: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.row, self.component_name, self.max_items, self.strings = row, name, max_items, strings


class OneOrManyScheme(OpenApiSerializerExtension):
    target_class = OneOrMany

    def get_name(self, auto_schema, direction):
        return self.target.component_name

    def map_serializer(self, auto_schema, direction):
        row = auto_schema.resolve_serializer(self.target.row, direction).ref
        item = {"oneOf": [row, {"type": "string"}]} if self.target.strings else row
        return {"oneOf": [row, {"type": "array", "items": item, "minItems": 1, "maxItems": self.target.max_items}]}
