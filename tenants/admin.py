"""Admin for tenants, and the base class that scopes every tenant-owned admin page to the user's tenants."""

import copy
import functools
import secrets
from contextlib import contextmanager
from contextvars import ContextVar

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import Http404, HttpResponseRedirect

from tenants.models import ApiKey, Membership, QuotaUsage, Tenant, _digest
from tenants.roles import Capability, role_can
from tenants.scoping import TenantOwned, TenantSet, current_tenant
from tenants.switcher import member_tenant_ids


def within_chosen(ids: list[int] | None) -> list[int] | None:
    """`ids` narrowed to the admin request's scope: the tenant chosen in the header's switcher (tenants.switcher),
    which the middleware put in scope. Outside an admin request (no such scope), `ids` as they are."""
    scope = current_tenant()
    if not isinstance(scope, TenantSet) or scope.ids is None:
        return ids
    return sorted(scope.ids) if ids is None else [i for i in ids if i in scope.ids]


def user_tenant_ids(user) -> list[int] | None:
    """None means every tenant (superusers); otherwise the tenants the user is a member of; in the admin, only
    the one chosen in the switcher, if any."""
    return within_chosen(member_tenant_ids(user))


# An admin page asks for the user's roles once per model it lists (the sidebar, the index): within one admin
# request they are read once. A membership saved or deleted meanwhile empties the memo.
_roles_memo: ContextVar[dict | None] = ContextVar("admin_roles_memo", default=None)


@contextmanager
def roles_memoized():
    """Within the block, a user's (tenant_id, role) pairs are read from the database once."""
    token = _roles_memo.set({})
    try:
        yield
    finally:
        _roles_memo.reset(token)


@receiver([post_save, post_delete], sender=Membership)
def _roles_changed(**kwargs):
    memo = _roles_memo.get()
    if memo is not None:
        memo.clear()


def user_roles(user) -> list[tuple[int, str]]:
    memo = _roles_memo.get()
    if memo is not None and user.pk in memo:
        return memo[user.pk]
    roles = list(Membership.objects.filter(user=user).values_list("tenant_id", "role"))
    if memo is not None:
        memo[user.pk] = roles
    return roles


def capable_tenant_ids(user, capability: Capability) -> list[int] | None:
    """The tenants where the user's role has `capability` (None: every tenant, for a superuser); in the admin,
    only the one chosen in the switcher, if any."""
    if user.is_superuser:
        return within_chosen(None)
    roles = user_roles(user)
    return within_chosen([tenant_id for tenant_id, role in roles if role_can(role, capability)])


def user_can(user, capability: Capability, tenant_id: int | None = None) -> bool:
    """In that tenant, by the user's role there; with no tenant (a list or an add page), in any of their tenants."""
    ids = capable_tenant_ids(user, capability)
    return ids is None or (bool(ids) if tenant_id is None else tenant_id in ids)


def tenant_action(capability: Capability, *, description: str):
    """An admin action offered only to users whose role has `capability` somewhere (get_actions), which checks it
    again itself for the tenant of every selected row: a forged POST, or a row of a tenant where the user's role
    is another, changes nothing."""

    def decorate(func):
        @functools.wraps(func)
        def checked(modeladmin, request, queryset):
            ids = capable_tenant_ids(request.user, capability)
            if ids is not None and queryset.exclude(tenant_id__in=ids).exists():
                refusal = f"Your role does not allow “{description}” for every selected row; nothing was changed."
                modeladmin.message_user(request, refusal, messages.ERROR)
                return None
            return func(modeladmin, request, queryset)

        checked.capability = capability
        return admin.action(description=description)(checked)

    return decorate


def user_colleagues(user):
    """The users who share a tenant with `user` (every user, for a superuser)."""
    users = get_user_model().objects.order_by("username")
    ids = user_tenant_ids(user)
    return users if ids is None else users.filter(memberships__tenant_id__in=ids).distinct()


class UserTenantsFilter(admin.RelatedFieldListFilter):
    """The "By tenant" filter, offering only the tenants the user belongs to: Django's own lists every tenant in
    the database, since Tenant rows are not tenant-scoped themselves."""

    def field_choices(self, field, request, model_admin):
        ids = user_tenant_ids(request.user)
        limit = None if ids is None else {"pk__in": ids}
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, limit_choices_to=limit, ordering=ordering)


class MissingIs404:
    """A row that is not there (another tenant's, or no such id) is a 404 on its change, delete and history pages,
    as in the API and on the desk, instead of Django's redirect to the index saying it "doesn't exist"."""

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(f"no {opts.verbose_name} {str(object_id)[:40]} here")


class TenantScopedAdmin(MissingIs404, admin.ModelAdmin):
    """Staff see and pick only the tenants they belong to; another tenant's object is simply not there. Every
    member sees the rows; adding, changing and deleting one, and each action, need the capability its role has
    in that row's tenant (tenants.roles)."""

    list_filter = ("tenant",)
    change_capability = Capability.CHANGE_DATA  # adding or changing a row
    delete_capability = Capability.CHANGE_DATA

    def get_list_filter(self, request):
        return [("tenant", UserTenantsFilter) if f == "tenant" else f for f in super().get_list_filter(request)]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        # A row never moves to another tenant: its keys, and the rows pointing at it, would then mix tenants.
        return fields + ("tenant",) if obj is not None and "tenant" not in fields else fields

    def get_form(self, request, obj=None, **kwargs):
        """On a row's own page, its foreign keys offer only rows of the row's tenant (on an add page, before a
        tenant is chosen, the model's validation refuses a mix)."""
        form = super().get_form(request, obj, **kwargs)
        for name, field in list(form.base_fields.items()) if obj is not None else ():
            queryset = getattr(field, "queryset", None)
            if queryset is not None and issubclass(queryset.model, TenantOwned):
                form.base_fields[name] = field = copy.deepcopy(field)  # declared fields are shared by every form
                field.queryset = queryset.filter(tenant_id=obj.tenant_id)
        return form

    def get_queryset(self, request):
        qs = self.model.dangerously_unscoped.all()
        ids = user_tenant_ids(request.user)
        return qs if ids is None else qs.filter(tenant_id__in=ids)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A row is written only into a tenant where the user's role may (save_model checks it again), pointing
        # at rows of such tenants.
        ids = capable_tenant_ids(request.user, self.change_capability)
        related = db_field.related_model
        if db_field.name == "tenant" and ids is not None:
            kwargs["queryset"] = Tenant.objects.filter(pk__in=ids)
            if len(ids) == 1:  # one tenant to write into (the switcher's, or the user's only one): chosen already
                kwargs.setdefault("initial", ids[0])
        elif hasattr(related, "dangerously_unscoped"):
            qs = related.dangerously_unscoped.all()
            kwargs["queryset"] = qs if ids is None else qs.filter(tenant_id__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request) and user_can(request.user, self.change_capability)

    def has_change_permission(self, request, obj=None):
        tenant_id = None if obj is None else obj.tenant_id
        return self.has_module_permission(request) and user_can(request.user, self.change_capability, tenant_id)

    def has_delete_permission(self, request, obj=None):
        tenant_id = None if obj is None else obj.tenant_id
        return self.has_module_permission(request) and user_can(request.user, self.delete_capability, tenant_id)

    def save_model(self, request, obj, form, change):
        if not user_can(request.user, self.change_capability, obj.tenant_id):
            raise PermissionDenied
        super().save_model(request, obj, form, change)

    def get_actions(self, request):
        """Only the actions the user's role allows somewhere; an action naming no capability is never offered."""
        actions = super().get_actions(request)
        return {
            name: action
            for name, action in actions.items()
            if name == "delete_selected" or self._may_run(request, action[0])
        }

    @staticmethod
    def _may_run(request, func) -> bool:
        capability = getattr(func, "capability", None)
        return capability is not None and user_can(request.user, capability)

    def changelist_view(self, request, extra_context=None):
        # Django answers an action it does not offer with "No action selected"; say why instead.
        forged = set(request.POST.getlist("action")) - set(self.get_actions(request)) - {""}
        if request.method == "POST" and forged:
            refusal = f"Your role does not allow {', '.join(sorted(forged))} here; nothing was changed."
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)


class WrittenByTheProduct:
    """Rows the product writes (runs, emails, usage, trained models): a hand-made one would be half a row, so
    they are never added here, and there is no "Add" button."""

    def has_add_permission(self, request):
        return False


class ReadOnly(WrittenByTheProduct):
    """Records of what happened (usage, trained models): shown, never edited."""

    def has_change_permission(self, request, obj=None):
        return False


class Untouchable(ReadOnly):
    """Rows the product's own bookkeeping relies on (quota counts, batch records): shown, never edited or deleted."""

    def has_delete_permission(self, request, obj=None):
        return False


def owned_tenant_ids(user) -> list[int] | None:
    return capable_tenant_ids(user, Capability.MANAGE_ACCOUNT)


class OwnersOnlyAdmin(MissingIs404, admin.ModelAdmin):
    """Tenants, memberships and API keys: visible to members, changed only by owners (superusers: all)."""

    tenant_field = "tenant_id"

    def get_queryset(self, request):
        ids = user_tenant_ids(request.user)
        qs = super().get_queryset(request)
        return qs if ids is None else qs.filter(**{f"{self.tenant_field}__in": ids})

    def _owns(self, request, obj) -> bool:
        ids = owned_tenant_ids(request.user)
        return ids is None or (bool(ids) if obj is None else getattr(obj, self.tenant_field) in ids)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request) and self._owns(request, None)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request) and self._owns(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        ids = owned_tenant_ids(request.user)
        if db_field.name == "tenant" and ids is not None:
            kwargs["queryset"] = Tenant.objects.filter(pk__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PickColleagues:
    """An owner adds or moves only people already in one of their tenants, and never sees the other tenants'
    users listed; a new person joins through a superuser or `membership_add`."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = user_colleagues(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(PickColleagues, admin.TabularInline):
    model = Membership
    extra = 0


class TenantForm(forms.ModelForm):
    """The plan is one of the plans in data (routing.Plan); a change of the model overrides says why."""

    override_reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the model overrides change (recorded with your name and the time). Required when they do.",
    )  # fmt: skip

    class Meta:
        model = Tenant
        fields = "__all__"  # noqa: DJ007 - the admin lays out the fields (and which are read-only)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "plan" in self.fields:
            from routing.models import Plan

            self.fields["plan"] = forms.ChoiceField(
                choices=list(Plan.objects.order_by("slug").values_list("slug", "name")),
                initial=self.instance.plan, help_text=Tenant._meta.get_field("plan").help_text,
            )  # fmt: skip

    def clean(self):
        data = super().clean()
        if "model_overrides" in self.changed_data and not (data.get("override_reason") or "").strip():
            self.add_error("override_reason", "Say why the model overrides change.")
        return data


@admin.register(Tenant)
class TenantAdmin(OwnersOnlyAdmin):
    form = TenantForm
    list_display = ("name", "slug", "plan", "recommender", "sending_paused_at", "created_at")
    inlines = [MembershipInline]
    tenant_field = "pk"
    # What the tenant pays for and which models serve it: set by platform staff, shown to owners read-only.
    platform_fields = ("plan", "monthly_email_quota", "monthly_budget_usd", "model_overrides")
    # Set by the complaint guard and cleared only by the "Resume sending" action, which records who and when.
    readonly_fields = ("sending_paused_at", "sending_paused_reason")
    actions = ["resume_sending"]

    # The page in sections; a field no section names lands in the last one, so none is ever left off the form.
    SECTIONS = (
        ("Brand and sender", ("slug", "name", "brand_name", "sender_name", "sender_email", "reply_to_email",
                              "postal_address")),
        ("Delivery", ("email_provider", "sending_domain", "send_rate_per_second", "timezone", "frequency_cap",
                      "frequency_period_days", "frequency_cap_action", "sending_paused_at", "sending_paused_reason")),
        ("Review", ("reject_reasons", "guardrail_use", "bedrock_guardrail_id", "bedrock_guardrail_version", "brand_tone",
                    "judge_auto_approve_at")),
        ("Model routing", ("routing_strategy",)),
        ("Recommender", ("recommender", "personalize_recommender_arn", "personalize_filter_arn",
                         "personalize_dataset_group_arn", "personalize_exported_through", "personalize_synced_at",
                         "personalize_bucket", "personalize_role_arn")),
        ("AWS account", ("aws_region", "aws_role_arn", "aws_external_id")),
    )  # fmt: skip

    def get_fieldsets(self, request, obj=None):
        fields = list(self.get_fields(request, obj))
        sections = [(title, {"fields": [f for f in names if f in fields]}) for title, names in self.SECTIONS]
        named = {f for _, names in self.SECTIONS for f in names}
        rest = [f for f in fields if f not in named]
        return [section for section in sections if section[1]["fields"]] + (
            [("Plan and limits", {"fields": rest})] if rest else []
        )

    def has_add_permission(self, request):
        return request.user.is_superuser

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not request.user.is_superuser and "override_reason" in fields:
            fields.remove("override_reason")
        return fields

    def save_model(self, request, obj, form, change):
        from routing.models import OverrideChange

        before = Tenant.objects.filter(pk=obj.pk).values_list("model_overrides", flat=True).first() if change else {}
        super().save_model(request, obj, form, change)
        if "model_overrides" in form.changed_data and request.user.is_superuser:
            OverrideChange.objects.create(tenant=obj, before=before or {}, after=obj.model_overrides,
                                          changed_by=request.user.get_username(),
                                          reason=form.cleaned_data.get("override_reason", "").strip())  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else fields + self.platform_fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        tenant = self.get_object(request, object_id)
        if tenant is not None and tenant.sending_paused_at and request.method == "GET":
            reason = tenant.sending_paused_reason.rstrip(". ")
            messages.error(request, f"Sending is paused for {tenant.name}: {reason}. An owner resumes it with the "
                           "action “Resume sending” on the tenants list.")  # fmt: skip
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Resume sending (paused by the complaint guard)", permissions=["change"])
    def resume_sending(self, request, queryset):
        from campaigns.guard import sending_resume

        owned = owned_tenant_ids(request.user)
        if owned is not None and queryset.exclude(pk__in=owned).exists():
            refusal = "Only an owner of each selected tenant may resume its sending; nothing was changed."
            self.message_user(request, refusal, messages.ERROR)
            return
        for tenant in queryset:
            reason = tenant.sending_paused_reason
            if sending_resume(tenant=tenant, by=request.user.get_username()):
                # The admin's history records who resumed it, and when.
                self.log_change(request, tenant, f"Resumed sending (it was paused: {reason})"[:1000])
                self.message_user(request, f"{tenant.name}: sending resumed.")
            else:
                self.message_user(request, f"{tenant.name}: sending was not paused.", messages.WARNING)


@admin.register(Membership)
class MembershipAdmin(PickColleagues, OwnersOnlyAdmin):
    list_display = ("user", "tenant", "role")
    list_filter = ("role",)


class ApiKeyForm(forms.ModelForm):
    revoke = forms.BooleanField(
        required=False, label="Revoke this key",
        help_text="Its next request is refused. A revoked key cannot be restored: add a new key instead.",
    )  # fmt: skip

    class Meta:
        model = ApiKey
        fields = ("tenant", "name", "role", "scope")


@admin.register(ApiKey)
class ApiKeyAdmin(OwnersOnlyAdmin):
    """Keys are issued here (the key is shown once) and revoked here for good: the revocation's time and actor are
    read-only, so a leaked key cannot be brought back by clearing a date."""

    form = ApiKeyForm
    list_display = ("name", "tenant", "role", "scope", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("revoked_at", "revoked_by")
    actions = ("revoke_keys",)

    def get_fields(self, request, obj=None):
        fields = ("tenant", "name", "role", "scope")
        if obj is None:
            return fields
        if obj.revoked_at is not None:
            return (*fields, "revoked_at", "revoked_by")
        return (*fields, "revoke") if self.has_change_permission(request, obj) else fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.prefix = secrets.token_hex(4)
            plain = f"ms_{obj.prefix}_{secrets.token_urlsafe(32)}"
            obj.digest = _digest(plain)
            messages.warning(request, f"API key (shown once, copy it now): {plain}")
        super().save_model(request, obj, form, change)
        if change and form.cleaned_data.get("revoke"):
            obj.revoke(actor=f"admin:{request.user.get_username()}")

    @admin.action(description="Revoke the selected API keys (for good)", permissions=["change"])
    def revoke_keys(self, request, queryset):
        actor = f"admin:{request.user.get_username()}"
        keys = [key for key in queryset if self._owns(request, key)]  # owners revoke their own tenants' keys only
        revoked = sum(key.revoke(actor=actor) for key in keys)
        already = len(keys) - revoked
        messages.success(request, f"Revoked {revoked} API key{'' if revoked == 1 else 's'}."
                         + (f" {already} {'was' if already == 1 else 'were'} revoked already." if already else ""))  # fmt: skip


@admin.register(QuotaUsage)
class QuotaUsageAdmin(Untouchable, OwnersOnlyAdmin):
    """How much of each month's email quota is taken: visible to members, written only by the quota services."""

    list_display = ("tenant", "month", "reserved")
    readonly_fields = ("tenant", "month", "reserved")


def history_answers_alike(site: admin.AdminSite) -> None:
    """Django's history view looks the row up before it checks that the user may see the model at all: 302 for an
    id that does not exist, 403 for one that does, which tells staff what exists in other tenants (their users,
    say). Checking the model first answers 403 for both; rows of a model the user may see are scoped as before."""
    for model_admin in site._registry.values():

        def guarded(request, object_id, extra_context=None, _admin=model_admin, _view=model_admin.history_view):
            if not _admin.has_view_or_change_permission(request):
                raise PermissionDenied
            return _view(request, object_id, extra_context)

        model_admin.history_view = guarded
