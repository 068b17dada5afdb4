"""Admin requests run inside the scope of the tenants the signed-in staff member works in: the one chosen in the
header's switcher (tenants.switcher), or else every tenant they belong to."""

from tenants.admin import roles_memoized
from tenants.scoping import tenant_scope
from tenants.switcher import admin_scope


class AdminTenantScopeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if not request.path.startswith("/admin/") or user is None or not user.is_authenticated:
            return self.get_response(request)
        with tenant_scope(admin_scope(request)), roles_memoized():
            return self.get_response(request)
