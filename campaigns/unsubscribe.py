"""Unsubscribe links: a signed token naming the tenant and contact, a confirmation page and RFC 8058 one-click."""

import base64

from django.conf import settings
from django.core import signing
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.csrf import csrf_exempt

from datasets.consent import contact_unsubscribe
from datasets.models import ConsentSource, Contact

SALT = "campaigns.unsubscribe"


def unsubscribe_token(tenant_id: int, contact_id: int) -> str:
    return signing.dumps([tenant_id, contact_id], salt=SALT, compress=True)


def unsubscribe_url(tenant_id: int, contact_id: int) -> str:
    return settings.SITE_URL + reverse("unsubscribe", args=[unsubscribe_token(tenant_id, contact_id)])


MAILTO_LOCAL = "unsubscribe+"
MAILTO_SALT = "campaigns.unsubscribe.mailto"


def mailto_token(tenant_id: int, contact_id: int) -> str:
    """`TENANT-CONTACT-MAC`, the MAC 16 base32 letters of an HMAC of the two ids under the site's secret: short
    enough for an address (RFC 5321: 64 characters before the @) and in one case, since mail systems may change
    the case of an address (the link's base64 token would not survive that)."""
    mac = salted_hmac(MAILTO_SALT, f"{tenant_id}-{contact_id}", algorithm="sha256").digest()
    return f"{tenant_id}-{contact_id}-{base64.b32encode(mac[:10]).decode().lower()}"


def unsubscribe_mailto(tenant_id: int, contact_id: int) -> str:
    """The List-Unsubscribe mailto address: `unsubscribe+TENANT-CONTACT-MAC@UNSUBSCRIBE_MAILTO_DOMAIN`."""
    return f"{MAILTO_LOCAL}{mailto_token(tenant_id, contact_id)}@{settings.UNSUBSCRIBE_MAILTO_DOMAIN}"


def token_from_address(address: str) -> str:
    """The token of an unsubscribe+TOKEN@domain address (the domain must be ours), lower-cased, or "" when the
    address is not one."""
    local, _, domain = (address or "").strip().rpartition("@")
    wanted = (settings.UNSUBSCRIBE_MAILTO_DOMAIN or "").lower()
    if not wanted or domain.lower() != wanted or not local.lower().startswith(MAILTO_LOCAL):
        return ""
    return local[len(MAILTO_LOCAL) :].lower()


def contact_of_mailto_token(token: str) -> Contact | None:
    """The contact a valid mailto token names, or None (forged, damaged, or a contact since deleted)."""
    parts = token.split("-")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()) or len(parts[0] + parts[1]) > 40:
        return None
    tenant_id, contact_id = int(parts[0]), int(parts[1])
    if not constant_time_compare(mailto_token(tenant_id, contact_id), token):
        return None
    return Contact.dangerously_unscoped.select_related("tenant").filter(tenant_id=tenant_id, pk=contact_id).first()


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
