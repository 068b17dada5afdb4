"""The admin's tenant switcher: a staff member in several tenants (or a superuser) chooses the one to work in,
kept in the session; the admin's scope (tenants.middleware) and its scoping helpers (tenants.admin) then hold
only that tenant."""

from django.contrib import admin, messages
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tenants.models import Membership, Tenant
from tenants.scoping import TenantSet

SESSION_KEY = "admin_tenant_id"
ALL = "all"


def member_tenant_ids(user) -> list[int] | None:
    """The tenants the user belongs to; None: every tenant (superusers)."""
    if user.is_superuser:
        return None
    return list(Membership.objects.filter(user=user).values_list("tenant_id", flat=True))


def may_work_in(user, tenant_id: int) -> bool:
    if user.is_superuser:
        return Tenant.objects.filter(pk=tenant_id).exists()
    return Membership.objects.filter(user=user, tenant_id=tenant_id).exists()


def admin_scope(request) -> TenantSet:
    """The tenants an admin request works in: the one chosen in the switcher, or else all the user's own. A choice
    the user may no longer make (a membership that ended, a tenant deleted) is forgotten."""
    ids = member_tenant_ids(request.user)
    chosen = request.session.get(SESSION_KEY)
    if chosen is None:
        return TenantSet(ids)
    if (chosen in ids) if ids is not None else Tenant.objects.filter(pk=chosen).exists():
        return TenantSet([chosen])
    del request.session[SESSION_KEY]
    return TenantSet(ids)


def switcher_choices(request) -> dict:
    """What the header's switcher offers: the user's tenants (every tenant for a superuser), and the chosen one."""
    ids = member_tenant_ids(request.user)
    tenants = Tenant.objects.order_by("name").only("pk", "name")
    tenants = list(tenants if ids is None else tenants.filter(pk__in=ids))
    chosen = request.session.get(SESSION_KEY)
    current = next((t for t in tenants if t.pk == chosen), None)
    return {"tenants": tenants, "current": current, "everything": ids is None}


@require_POST
def tenant_switch(request):
    choice = request.POST.get("tenant", "").strip()
    if choice in ("", ALL):
        request.session.pop(SESSION_KEY, None)
        messages.info(request, "Working in all your tenants.")
        return HttpResponseRedirect(_next(request))
    try:
        tenant_id = int(choice)
    except ValueError:
        return HttpResponseBadRequest("Choose a tenant from the list in the header.", content_type="text/plain")
    if not may_work_in(request.user, tenant_id):
        # The same answer for a tenant that does not exist: a refusal must not tell what exists elsewhere.
        context = {**admin.site.each_context(request), "title": "Not one of your tenants"}
        return TemplateResponse(request, "admin/tenant_switch_refused.html", context, status=403)
    request.session[SESSION_KEY] = tenant_id
    messages.info(request, f"Working in {Tenant.objects.get(pk=tenant_id).name}.")
    return HttpResponseRedirect(_next(request))


def _next(request) -> str:
    """Back to the page the switch was made on (another tenant's object is then simply not there)."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    return target if safe and target.startswith("/admin/") else reverse("admin:index")


urlpatterns = [path("admin/tenant/", admin.site.admin_view(tenant_switch), name="tenant_switch")]
