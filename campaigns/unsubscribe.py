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
