"""Which provider hands a tenant's mail over (SMTP, or Amazon SES through django-anymail), what a provider's
failure means, the id it gave the message, and the List-Unsubscribe header with its mailto when an inbound path
exists. campaigns.sending calls these around each handover."""

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from campaigns.unsubscribe import unsubscribe_mailto
from routing.errors import ProviderError
from tenants.aws import ses_client_params
from tenants.aws_errors import AWS_ERRORS, aws_error, aws_reach
from tenants.models import EmailProvider

SES_BACKEND = "anymail.backends.amazon_ses.EmailBackend"
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def mail_connection(tenant):
    """The connection for the tenant's provider (Tenant.email_provider: SMTP or SES; blank: the platform's
    EMAIL_BACKEND). SES goes through django-anymail, its client in the tenant's region and AWS account, one
    attempt (tenants.aws.ses_client_params)."""
    provider = getattr(tenant, "email_provider", "")
    if provider == EmailProvider.SES or (not provider and settings.EMAIL_BACKEND == SES_BACKEND):
        return get_connection(SES_BACKEND, client_params=ses_client_params(tenant))
    if provider == EmailProvider.SMTP:
        return get_connection(SMTP_BACKEND)
    return get_connection()


def provider_failure(exc: Exception) -> tuple[str, ProviderError] | None:
    """For a send that anymail's SES backend could not make: how far the request got (tenants.aws_errors.aws_reach:
    answered, unreached, lost, local) and the error in the project's vocabulary. None for other backends."""
    cause = exc.__cause__
    if not isinstance(cause, AWS_ERRORS):
        return None
    return aws_reach(cause), aws_error(cause, "sending through Amazon SES")


def provider_message_id(message: EmailMessage) -> str:
    """The id the provider gave the message it took (SES's MessageId, through anymail); blank for SMTP."""
    status = getattr(message, "anymail_status", None)
    return str(getattr(status, "message_id", None) or "")[:200]


def list_unsubscribe(url: str, *, tenant_id: int, contact_id: int) -> str:
    """RFC 2369: the one-click https link and, when the inbound path exists (UNSUBSCRIBE_MAILTO_DOMAIN), a mailto
    naming the contact with a short MAC, which campaigns.webhooks reads back. Without an inbound path, no mailto."""
    header = f"<{url}>"
    if settings.UNSUBSCRIBE_MAILTO_DOMAIN:
        header += f", <mailto:{unsubscribe_mailto(tenant_id, contact_id)}?subject=unsubscribe>"
    return header
