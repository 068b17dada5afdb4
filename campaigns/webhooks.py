"""Amazon SES's notifications, through SNS: delivery reports at /webhooks/ses/tracking/ and the List-Unsubscribe
mailto's mail at /webhooks/ses/inbound/. anymail's views parse them (keeping its basic auth, ANYMAIL's
WEBHOOK_SECRET); ours first check the SNS signature (campaigns.sns), so that nothing a forged message says is
believed: it is answered 400 with the reason, and nothing is recorded. Reports go through campaigns.reports like
every other provider's."""

import hashlib
import json
import logging

from anymail.exceptions import AnymailAPIError, AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.signals import EventType, inbound, tracking
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView, AmazonSESTrackingWebhookView
from django.dispatch import receiver
from django.http import HttpResponse

from campaigns.models import ReportKind
from campaigns.reports import report_record
from campaigns.sns import SnsRefused, sns_verify
from campaigns.unsubscribe import contact_of_mailto_token, token_from_address
from datasets.consent import contact_unsubscribe
from datasets.models import ConsentSource

log = logging.getLogger(__name__)

PROVIDER = "ses"
# SES's bounce types (https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html): Permanent is a hard
# bounce; Transient a soft one; Undetermined (SES could not tell why) is counted as a soft one, so that an address
# that keeps bouncing that way is suppressed after SOFT_BOUNCE_LIMIT of them.
BOUNCE_KINDS = {"Permanent": ReportKind.HARD_BOUNCE, "Transient": ReportKind.SOFT_BOUNCE,
                "Undetermined": ReportKind.SOFT_BOUNCE}  # fmt: skip


class SignedSnsMixin:
    """Verifies the SNS signature before anymail's view believes anything (as one of its validators, which run
    before the message is parsed), and answers every refusal with a 400 that says why."""

    warn_if_no_basic_auth = False  # the signature vouches for AWS; WEBHOOK_SECRET, when set, for our topic

    def validate_request(self, request):
        try:
            sns_verify(self._parse_sns_message(request))
        except SnsRefused as exc:
            raise AnymailWebhookValidationFailure(f"refused: {exc}") from None

    def post(self, request, *args, **kwargs):
        try:
            if not isinstance(json.loads(request.body or b"null"), dict):
                return _refused("the body is not an SNS message (a JSON object)")
        except (ValueError, UnicodeDecodeError):
            return _refused("the body is not JSON")
        try:
            return super().post(request, *args, **kwargs)
        except AnymailWebhookValidationFailure as exc:
            return _refused(str(exc))
        except (AnymailAPIError, AnymailConfigurationError) as exc:  # signed, but not what this endpoint takes
            log.warning("SES webhook %s: %s", request.path, exc)
            return _refused(str(exc)[:500])


def _refused(why: str) -> HttpResponse:
    log.warning("SES webhook refused: %s", why)
    return HttpResponse(why, status=400, content_type="text/plain; charset=utf-8")


class SesTrackingWebhookView(SignedSnsMixin, AmazonSESTrackingWebhookView):
    pass


class SesInboundWebhookView(SignedSnsMixin, AmazonSESInboundWebhookView):
    pass


# SES's event publishing (a configuration set with open and click tracking, to SNS) says "Open" and "Click";
# anymail names them OPENED and CLICKED, for every recipient of the message (SES does not say which one opened).
TRACKED = {EventType.DELIVERED: ReportKind.DELIVERED, EventType.COMPLAINED: ReportKind.COMPLAINT,
           EventType.OPENED: ReportKind.OPENED, EventType.CLICKED: ReportKind.CLICKED}  # fmt: skip


def tracking_kind(event) -> str | None:
    """The report an anymail tracking event is, or None for those we do not record (sent, rejected, failed…).
    anymail calls every SES bounce BOUNCED; SES's own bounceType tells hard from soft."""
    if event.event_type in TRACKED:
        return TRACKED[event.event_type]
    if event.event_type == EventType.BOUNCED:
        bounce_type = ((event.esp_event or {}).get("bounce") or {}).get("bounceType")
        return BOUNCE_KINDS.get(bounce_type, ReportKind.SOFT_BOUNCE)
    return None


@receiver(tracking, sender=SesTrackingWebhookView, dispatch_uid="campaigns.ses_tracking")
def ses_tracking(sender, event, esp_name, **kwargs):
    kind = tracking_kind(event)
    if kind is None or not event.recipient:
        return
    address = str(event.recipient)
    # One SNS notification can name several recipients: each is its own event.
    event_id = f"{event.event_id}:{address.lower()}"
    if len(event_id) > 200:
        event_id = f"{event.event_id}:{hashlib.sha256(address.lower().encode()).hexdigest()[:40]}"
    ses = event.esp_event or {}
    detail = {"diagnostic": event.mta_response or event.description or "", "description": event.description or ""}
    if kind in (ReportKind.HARD_BOUNCE, ReportKind.SOFT_BOUNCE):
        bounce = ses.get("bounce") or {}
        detail.update(bounceType=bounce.get("bounceType", ""), bounceSubType=bounce.get("bounceSubType", ""))
    elif kind == ReportKind.COMPLAINT:
        complaint = ses.get("complaint") or {}
        detail.update(complaintFeedbackType=complaint.get("complaintFeedbackType", ""))
    elif kind in (ReportKind.OPENED, ReportKind.CLICKED):  # the reader's software, not their IP address
        detail["userAgent"] = str(event.user_agent or "")[:500]
        if kind == ReportKind.CLICKED:
            detail["link"] = str(event.click_url or "")[:1000]
    try:
        report_record(provider=PROVIDER, kind=kind, address=address, event_id=event_id,
                      provider_message_id=event.message_id or "", at=event.timestamp, detail=detail)  # fmt: skip
    except ValueError as exc:  # not an address: nothing to record, and SNS must not retry it for ever
        log.warning("SES %s report dropped: %s", kind, exc)


@receiver(inbound, sender=SesInboundWebhookView, dispatch_uid="campaigns.ses_inbound")
def ses_inbound(sender, event, esp_name, **kwargs):
    """Mail to unsubscribe+TOKEN@UNSUBSCRIBE_MAILTO_DOMAIN unsubscribes the token's contact, as the one-click link
    does. A token that is unknown, forged or damaged changes nothing: logged, and answered 200 all the same."""
    message = event.message
    receipt = ((event.esp_event or {}).get("receipt") or {}).get("recipients") or []
    candidates = [message.envelope_recipient, *receipt, *(a.addr_spec for a in message.to)]
    token = next((t for t in (token_from_address(str(a)) for a in candidates if a) if t), "")
    contact = contact_of_mailto_token(token) if token else None
    if contact is None:
        log.warning("unsubscribe mail to %s: no valid token; nothing changed", [str(a)[:120] for a in candidates])
        return
    contact_unsubscribe(contact=contact, source=ConsentSource.MAILTO, by="recipient",
                        note=f"mail from {str(message.envelope_sender or '')[:200]}")  # fmt: skip
