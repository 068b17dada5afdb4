"""The one base class every tenant API uses: it resolves the tenant and scopes every query to it.

Subclasses cannot override get_queryset/get_object (a class-creation error says so); a view that really
needs to must name its method `dangerously_*` so review sees it.
"""

from django.conf import settings
from django.db.models import QuerySet
from django.db.models.query import ModelIterable
from rest_framework import viewsets
from rest_framework.settings import api_settings

from idempotency import claims
from saas.rows import values_lookups
from tenants.scoping import _current_tenant

_SEALED = ("get_queryset", "get_object")


class TenantScopedViewSet(viewsets.GenericViewSet):
    scope_model = None  # the TenantOwned model this view serves
    scope_select_related: tuple[str, ...] = ()
    # The columns a list page reads (related ones as `contact__external_id`), when the rows are wider than the page
    # shows; empty: all of them. Only the list action: the others may read the rest.
    list_only: tuple[str, ...] = ()
    # Lists page by cursor (saas/pagination.py) in this order, which ends in a unique column so pages are stable.
    list_ordering: tuple[str, ...] = ("pk",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _SEALED:
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} overrides {name}; tenant scoping lives in TenantScopedViewSet")

    @property
    def tenant(self):
        return self.request.user.tenant

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Everything after authentication (services, serializers, related managers) runs in the scope.
        self._scope_token = _current_tenant.set(self.tenant)
        # A POST with an Idempotency-Key claims it here, after authentication, permission and rate: a stored answer
        # is replayed instead of running the view (handle_exception), and the view's answer is stored on the claim
        # (finalize_response).
        self._idempotency = claims.begin(request, self.tenant)

    def handle_exception(self, exc):
        if isinstance(exc, claims.Replayed):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        claim, self._idempotency = self._idempotency, None
        if claim is not None:
            claims.finish(claim, response)
        return response

    def dispatch(self, request, *args, **kwargs):
        self._scope_token = self._idempotency = None
        # The router's format-suffix routes (`launch.json`) pass `format=` to the handler, which every action
        # would have to accept; it is taken here instead and still chooses the renderer (get_format_suffix).
        self._format_suffix = kwargs.pop(api_settings.FORMAT_SUFFIX_KWARG, None)
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:  # also when a view raises past DRF's handler: the scope never outlives the request
            if self._scope_token is not None:
                _current_tenant.reset(self._scope_token)

    def get_format_suffix(self, **kwargs):
        return self._format_suffix

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator, with no request: no rows at all
            return self.scope_model.dangerously_unscoped.none()
        qs = self.scope_model.objects.for_tenant(self.tenant).order_by(*self.list_ordering)
        if self.scope_select_related:
            qs = qs.select_related(*self.scope_select_related)
        return qs.only(*self.list_only) if self.list_only and self.action == "list" else qs

    def paginate_queryset(self, queryset):
        """A list whose serializer reads only columns is read with values(): the page's rows are dicts, which
        saas/rows.py renders to the same output without building a model instance per row."""
        if self.action == "list" and settings.API_FAST_ROWS and isinstance(queryset, QuerySet) and self.paginator:
            lookups = values_lookups(self.get_serializer_class())
            plain = queryset._iterable_class is ModelIterable and not queryset._prefetch_related_lookups
            if lookups is not None and plain:  # a prefetch needs model rows to attach to
                # A cursor page reads its position off the last row: the ordering's columns are read too.
                ordering = getattr(self.paginator, "get_ordering", lambda *_: ())(self.request, queryset, self)
                positions = (name.lstrip("-") for name in ordering)
                queryset = queryset.values(*dict.fromkeys((*lookups, *positions)))
        return super().paginate_queryset(queryset)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "tenant": self.tenant}
