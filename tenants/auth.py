"""API authentication: an API key resolves exactly one tenant and one role."""

from dataclasses import dataclass

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from tenants.models import ApiKey, Role, Tenant

WRITE_ROLES = (Role.OWNER, Role.MARKETER)
REVIEW_ROLES = (Role.OWNER, Role.MARKETER, Role.REVIEWER)


@dataclass(frozen=True)
class ApiPrincipal:
    """The caller behind an API key; stands in for request.user."""

    tenant: Tenant
    role: str
    key_name: str
    is_authenticated: bool = True
    is_anonymous: bool = False

    def __str__(self):
        return f"api-key:{self.key_name}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        plain = request.META.get("HTTP_X_API_KEY", "")
        if header.startswith(self.keyword + " "):
            plain = header[len(self.keyword) + 1 :].strip()
        if not plain:
            return None
        key = ApiKey.objects.authenticate(plain)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        return ApiPrincipal(tenant=key.tenant, role=key.role, key_name=key.name), key

    def authenticate_header(self, request):
        return self.keyword


class HasTenantRole(permissions.BasePermission):
    """Reads need any role; writes need the roles a view names for the action (default: owner, marketer)."""

    message = "Your role does not allow this action."

    def has_permission(self, request, view):
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        allowed = getattr(view, "action_roles", {}).get(getattr(view, "action", None), WRITE_ROLES)
        return principal.role in allowed
