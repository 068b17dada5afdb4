"""The API's interactive reference at /api/docs/ (Swagger UI, its assets from drf-spectacular-sidecar)."""

from django.http import HttpResponse
from drf_spectacular.views import SpectacularSwaggerView


class DocsView(SpectacularSwaggerView):
    """Swagger UI at /api/docs/. Its HTML renderer has no page for OPTIONS (DRF's metadata answer): that was a 500,
    found by the route walk; it is a 204 naming the methods instead."""

    def options(self, request, *args, **kwargs):
        return HttpResponse(status=204, headers={"Allow": "GET, HEAD, OPTIONS"})
