"""{% tenant_switcher %}: the admin header's choice of the tenant to work in (tenants.switcher)."""

from django import template

from tenants.switcher import switcher_choices

register = template.Library()


@register.inclusion_tag("admin/tenant_switcher.html", takes_context=True)
def tenant_switcher(context):
    request = context["request"]
    return {**switcher_choices(request), "request": request, "csrf_token": context.get("csrf_token")}
