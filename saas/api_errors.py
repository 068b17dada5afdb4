"""How the API answers errors that Django raises below the views: a row other rows depend on is a 409 that
names them, a model's own validation a 400; DRF handles the rest."""

from django.core.exceptions import ValidationError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

NAMED = 20  # dependants listed in the answer; the count says how many there are in all


def api_exception_handler(exc, context):
    if isinstance(exc, ProtectedError | RestrictedError):
        return in_use(exc)
    if isinstance(exc, ValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)


def in_use(exc: ProtectedError | RestrictedError) -> Response:
    """409: the row is still used; the answer says by what, so the caller can change or delete those first."""
    users = sorted(exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects, key=str)
    kinds = sorted({str(type(row)._meta.verbose_name_plural) for row in users})
    named = [{"type": type(row)._meta.model_name, "id": row.pk, "name": str(row)} for row in users[:NAMED]]
    listed = ", ".join(repr(str(row)) for row in users[:NAMED])
    detail = f"still used by {len(users)} {' and '.join(kinds)}: {listed}; change or delete them first"
    return Response({"detail": detail, "used_by": named, "used_by_count": len(users)}, status=status.HTTP_409_CONFLICT)
