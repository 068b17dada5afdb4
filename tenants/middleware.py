"""Admin requests run inside the scope of the tenants the signed-in staff member belongs to."""

from tenants.models import Membership
from tenants.scoping import TenantSet, tenant_scope


class AdminTenantScopeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if not request.path.startswith("/admin/") or user is None or not user.is_authenticated:
            return self.get_response(request)
        if user.is_superuser:
            scope = TenantSet(None)
        else:
            scope = TenantSet(Membership.objects.filter(user=user).values_list("tenant_id", flat=True))
        with tenant_scope(scope):
            return self.get_response(request)
