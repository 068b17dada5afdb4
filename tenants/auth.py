"""API authentication: an API key resolves exactly one tenant, one role and one scope (read-only or read-write)."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from tenants.models import ApiKey, KeyScope, Tenant
from tenants.roles import Capability, role_can

# A key's last_used_at is true to the minute: writing it on every request made every request a write, and the
# clients sharing one key queue on its row lock (bench/api.py: 50 clients, one key).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiPrincipal:
    """The caller behind an API key; stands in for request.user."""

    tenant: Tenant
    role: str
    key_name: str
    scope: str = KeyScope.READ_WRITE
    key_id: int | None = None
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
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        principal = ApiPrincipal(tenant=key.tenant, role=key.role, key_name=key.name, scope=key.scope, key_id=key.pk)
        return principal, key

    def authenticate_header(self, request):
        return self.keyword


READ_ONLY_KEY = "This API key is read-only: it may not change anything (create a read-write key for writes)."


class HasTenantRole(permissions.BasePermission):
    """Reads need any role (or the view's `read_capability`); a write needs a read-write key and the capability the
    view names for its action in `action_capabilities` (default: changing data). The roles that have each
    capability come from tenants.roles."""

    message = "Your role does not allow this action."

    def has_permission(self, request, view):
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        if request.method in permissions.SAFE_METHODS:
            return role_can(principal.role, view.read_capability) if getattr(view, "read_capability", None) else True
        if principal.scope != KeyScope.READ_WRITE:
            raise exceptions.PermissionDenied(READ_ONLY_KEY)
        capabilities = getattr(view, "action_capabilities", {})
        return role_can(principal.role, capabilities.get(getattr(view, "action", None), Capability.CHANGE_DATA))
