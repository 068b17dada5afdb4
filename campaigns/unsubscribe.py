"""Unsubscribe links: a signed token naming the tenant and contact, a confirmation page and RFC 8058 one-click."""

from django.conf import settings
from django.core import signing
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from datasets.consent import contact_unsubscribe
from datasets.models import ConsentSource, Contact

SALT = "campaigns.unsubscribe"


def unsubscribe_token(tenant_id: int, contact_id: int) -> str:
    return signing.dumps([tenant_id, contact_id], salt=SALT, compress=True)


def unsubscribe_url(tenant_id: int, contact_id: int) -> str:
    return settings.SITE_URL + reverse("unsubscribe", args=[unsubscribe_token(tenant_id, contact_id)])


MAILTO_LOCAL = "unsubscribe+"


def unsubscribe_mailto(token: str) -> str:
    """The List-Unsubscribe mailto address carrying the token: `unsubscribe+TOKEN@UNSUBSCRIBE_MAILTO_DOMAIN`. The
    token's ":" is not allowed in an address's local part, so it travels as "~" (neither base64 nor the signer
    uses that)."""
    return f"{MAILTO_LOCAL}{token.replace(':', '~')}@{settings.UNSUBSCRIBE_MAILTO_DOMAIN}"


def token_from_address(address: str) -> str:
    """The token of an unsubscribe+TOKEN@domain address (the domain must be ours), or "" when it is not one."""
    local, _, domain = (address or "").strip().rpartition("@")
    wanted = settings.UNSUBSCRIBE_MAILTO_DOMAIN
    if not wanted or domain.lower() != wanted or not local.lower().startswith(MAILTO_LOCAL):
        return ""
    return local[len(MAILTO_LOCAL) :].replace("~", ":")


def contact_of_token(token: str) -> Contact | None:
    """The contact a valid token names, or None (a forged, damaged or stale token)."""
    try:
        return _contact(token)
    except Http404:
        return None


def _contact(token: str) -> Contact:
    try:
        tenant_id, contact_id = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise Http404("This unsubscribe link is not valid.") from None
    contact = Contact.dangerously_unscoped.select_related("tenant").filter(tenant_id=tenant_id, pk=contact_id).first()
    if contact is None:
        raise Http404("This unsubscribe link is not valid.")
    return contact


@csrf_exempt  # one-click unsubscribe POSTs come from mail providers, without our CSRF cookie
def unsubscribe_view(request, token: str):
    contact = _contact(token)
    if request.method == "POST":
        contact_unsubscribe(contact=contact, source=ConsentSource.UNSUBSCRIBE_LINK, by="recipient")
        return render(request, "campaigns/unsubscribed.html", {"brand": contact.tenant.brand})
    return render(
        request, "campaigns/unsubscribe_confirm.html", {"brand": contact.tenant.brand, "email": contact.email}
    )
