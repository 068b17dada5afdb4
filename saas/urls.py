"""URL map: the admin (its dashboard and tenant switcher too), the REST API under /api/v1/ (its OpenAPI document at
/api/schema/, Swagger UI at /api/docs/), unsubscribe links and a health check."""

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from campaigns.api import CampaignRunViewSet, CampaignViewSet, GeneratedEmailViewSet, PromptTemplateViewSet
from campaigns.audit_api import AuditLogViewSet
from campaigns.dashboard import dashboard
from campaigns.reports_api import DeliveryReportViewSet
from campaigns.unsubscribe import unsubscribe_view
from campaigns.webhooks import SesInboundWebhookView, SesTrackingWebhookView
from datasets.api import ContactViewSet, InteractionViewSet, ItemViewSet, SuppressionViewSet
from routing.api import UsageViewSet
from saas import api_errors
from saas.docs import DocsView
from tenants import switcher
from tenants.keys_api import ApiKeyViewSet
from webhooks.api import WebhookEndpointViewSet


class ApiRouter(DefaultRouter):
    """DRF's router, plus PUT on a collection for a view's `upsert` (the bulk upsert by external_id): a list-level
    path such as `contacts/bulk/` would hide the contact whose external_id is "bulk"."""

    routes = [
        DefaultRouter.routes[0]._replace(mapping={**DefaultRouter.routes[0].mapping, "put": "upsert"}),
        *DefaultRouter.routes[1:],
    ]


router = ApiRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("items", ItemViewSet, basename="item")
router.register("interactions", InteractionViewSet, basename="interaction")
router.register("suppressions", SuppressionViewSet, basename="suppression")
router.register("templates", PromptTemplateViewSet, basename="template")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("runs", CampaignRunViewSet, basename="run")
router.register("emails", GeneratedEmailViewSet, basename="email")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("delivery-reports", DeliveryReportViewSet, basename="delivery-report")
router.register("audit-log", AuditLogViewSet, basename="audit-log")
router.register("usage", UsageViewSet, basename="usage")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    *switcher.urlpatterns,
    path("admin/", dashboard, name="dashboard"),  # the admin's index, with the figures
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", api_errors.not_found),  # any other /api/ path: a 404 in the envelope, with DEBUG on too
    path("u/<str:token>/", unsubscribe_view, name="unsubscribe"),
    # Amazon SES's notifications through SNS: delivery reports, and mail to the List-Unsubscribe mailto address.
    path("webhooks/ses/tracking/", SesTrackingWebhookView.as_view(), name="ses_tracking"),
    path("webhooks/ses/inbound/", SesInboundWebhookView.as_view(), name="ses_inbound"),
    path("healthz", lambda request: JsonResponse({"ok": True})),
]

handler404 = "saas.api_errors.not_found"  # JSON in the error envelope under /api/, Django's pages elsewhere
handler500 = "saas.api_errors.server_error"
