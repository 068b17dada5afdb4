"""The catalog and plans as data: seeded with today's models and prices, edited by platform staff only, read by
the gateway through a per-process cache that forgets its copy on save (and after CACHE_SECONDS)."""

import time
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from routing import catalog
from routing.catalog import get_model, get_plan, model_for_id
from routing.gateway import route_for
from routing.models import ModelEntry, OverrideChange, Plan, PlanRoute
from tenants.models import Role, Tenant
from tests.test_admin_roles import ROLES, login

pytestmark = pytest.mark.django_db
PLATFORM = ["modelentry", "plan", "planroute", "overridechange"]


def test_the_seed_holds_todays_catalog_and_plans():
    lite, sonnet = get_model("bedrock/nova-lite"), get_model("bedrock/claude-3.7-sonnet")
    assert (lite.model_id, lite.input_per_1k, lite.output_per_1k, lite.tier) == (
        "us.amazon.nova-lite-v1:0", Decimal("0.00006"), Decimal("0.00024"), "small")  # fmt: skip
    assert (sonnet.input_per_1k, sonnet.output_per_1k, sonnet.tier, sonnet.caching) == (
        Decimal("0.003"), Decimal("0.015"), "large", True)  # fmt: skip
    assert sonnet.batch_input_per_1k == Decimal("0.0015") and sonnet.context_window == 200_000
    assert get_model("local/qwen2.5-1.5b").max_tokens == 400
    assert ModelEntry.objects.count() == 8 + 2  # and the two of dynamic routing (Titan embeddings, Nova router)
    basic, pro = get_plan("basic"), get_plan("pro")
    assert (basic.tier, basic.monthly_email_quota, basic.monthly_budget_usd) == ("small", 10_000, Decimal("50"))
    assert basic.routes[("bedrock", "*")].model_key == "bedrock/nova-lite"
    assert basic.routes[("bedrock", "*")].fallback_key == "bedrock/claude-3-haiku"
    assert (pro.tier, pro.routes[("bedrock", "*")].model_key) == ("large", "bedrock/claude-3.7-sonnet")
    assert pro.routes[("local", "*")].model_key == basic.routes[("local", "*")].model_key == "local/qwen2.5-1.5b"


def test_an_operators_edit_is_read_at_once_without_a_deploy(tenant, settings):
    settings.LLM_BACKEND = "bedrock"
    entry = ModelEntry.objects.get(key="bedrock/nova-lite")
    assert get_model(entry.key).input_per_1k == Decimal("0.00006")  # cached now
    entry.input_per_1k = Decimal("0.0001")
    entry.save()
    assert get_model(entry.key).input_per_1k == Decimal("0.0001")
    route = PlanRoute.objects.get(plan__slug="basic", backend="bedrock", task="*")
    PlanRoute.objects.create(plan=route.plan, backend="bedrock", task="subject_lines",
                             model=ModelEntry.objects.get(key="bedrock/nova-micro"), max_output_tokens=60)  # fmt: skip
    decision = route_for(tenant=tenant, task="subject_lines")
    assert (decision.model_key, decision.max_tokens) == ("bedrock/nova-micro", 60)
    assert "route for task 'subject_lines'" in decision.reason
    assert route_for(tenant=tenant, task="marketing_email").model_key == "bedrock/nova-lite"
    entry.enabled = False
    entry.save()
    with pytest.raises(KeyError, match="disabled model 'bedrock/nova-lite'"):
        route_for(tenant=tenant, task="marketing_email")


def test_a_copy_older_than_the_ttl_is_read_again(monkeypatch):
    get_model("bedrock/nova-lite")
    ModelEntry.objects.filter(key="bedrock/nova-lite").update(output_per_1k=Decimal("1"))  # no signal: other process
    assert get_model("bedrock/nova-lite").output_per_1k == Decimal("0.00024")  # within the TTL: the copy
    read_at = catalog.snapshot().read_at
    monkeypatch.setattr(catalog.time, "monotonic", lambda: read_at + catalog.CACHE_SECONDS + 1)
    assert get_model("bedrock/nova-lite").output_per_1k == Decimal("1")


def test_a_routing_decision_takes_well_under_a_millisecond(tenant, settings):
    settings.LLM_BACKEND = "bedrock"
    tenant.model_overrides = {"marketing_email": "bedrock/nova-micro"}
    route_for(tenant=tenant, task="marketing_email")  # the cache is read once
    started, n = time.perf_counter(), 10_000
    for _ in range(n):
        route_for(tenant=tenant, task="marketing_email")
        model_for_id("us.amazon.nova-micro-v1:0")
    per_decision_ms = (time.perf_counter() - started) * 1000 / n
    print(f"routing decision: {per_decision_ms * 1000:.1f} µs")
    assert per_decision_ms < 1


def superuser_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.mark.parametrize("role", ROLES)
def test_tenant_members_never_see_the_catalog_or_plans(tenant, role):
    client = login(tenant, role)
    assert "routing/modelentry" not in client.get(reverse("admin:index")).content.decode()
    entry, plan = ModelEntry.objects.first(), Plan.objects.first()
    rows = {"modelentry": entry.pk, "plan": plan.pk, "planroute": PlanRoute.objects.first().pk}
    for model in PLATFORM:
        assert client.get(reverse(f"admin:routing_{model}_changelist")).status_code == 403, model
        assert client.get(reverse(f"admin:routing_{model}_add")).status_code == 403, model
        if model in rows:
            change = reverse(f"admin:routing_{model}_change", args=[rows[model]])
            assert client.get(change).status_code == 403, model
            assert client.post(change, {"key": "hacked"}).status_code == 403, model
    assert not ModelEntry.objects.filter(key="hacked").exists()


def test_platform_staff_edit_the_catalog_and_plans_in_the_admin():
    client = superuser_client()
    for model in PLATFORM:
        assert client.get(reverse(f"admin:routing_{model}_changelist")).status_code == 200, model
    entry = ModelEntry.objects.get(key="bedrock/nova-micro")
    data = {f.name: getattr(entry, f.name) for f in ModelEntry._meta.fields if f.name not in ("id", "updated_at")}
    data.update(output_per_1k="0.0002", router_arn="")
    data = {k: v for k, v in data.items() if v is not False}  # unchecked boxes are not posted
    response = client.post(reverse("admin:routing_modelentry_change", args=[entry.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert get_model("bedrock/nova-micro").output_per_1k == Decimal("0.0002")
    added = client.post(reverse("admin:routing_plan_add"), {
        "slug": "starter", "name": "Starter", "tier": "small", "monthly_email_quota": "500", "monthly_budget_usd": "5",
        "routes-TOTAL_FORMS": "1", "routes-INITIAL_FORMS": "0", "routes-0-backend": "bedrock", "routes-0-task": "*",
        "routes-0-model": ModelEntry.objects.get(key="bedrock/nova-micro").pk,
    })  # fmt: skip
    assert added.status_code == 302, added.content.decode()[:3000]
    assert get_plan("starter").routes[("bedrock", "*")].model_key == "bedrock/nova-micro"
    assert Tenant(plan="starter", monthly_email_quota=None).email_quota == 500


def test_a_plan_route_of_the_wrong_tier_is_refused_at_save():
    client = superuser_client()
    basic = Plan.objects.get(slug="basic")
    refused = client.post(reverse("admin:routing_planroute_add"), {
        "plan": basic.pk, "backend": "bedrock", "task": "marketing_email",
        "model": ModelEntry.objects.get(key="bedrock/nova-pro").pk,
    })  # fmt: skip
    assert refused.status_code == 200 and "large-tier model" in refused.content.decode()
    cross = client.post(reverse("admin:routing_planroute_add"), {
        "plan": Plan.objects.get(slug="pro").pk, "backend": "bedrock", "task": "marketing_email",
        "model": ModelEntry.objects.get(key="bedrock/nova-pro").pk,
        "fallback": ModelEntry.objects.get(key="bedrock/nova-lite").pk,
    })  # fmt: skip
    assert cross.status_code == 200 and "the model&#x27;s tier" in cross.content.decode()
    assert not PlanRoute.objects.filter(task="marketing_email").exists()


def test_overrides_are_staff_only_recorded_and_checked_against_the_tier(tenant):
    client = superuser_client()
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    from tests.test_tenant_admin import change_post

    pro_model = change_post(tenant, model_overrides='{"marketing_email": "bedrock/nova-pro"}', override_reason="x")
    page = client.post(url, pro_model)
    assert page.status_code == 200 and "large-tier model" in page.content.decode()
    no_reason = client.post(url, change_post(tenant, model_overrides='{"marketing_email": "bedrock/nova-micro"}'))
    assert no_reason.status_code == 200 and "Say why" in no_reason.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).model_overrides == {} and not OverrideChange.objects.exists()
    ok = client.post(url, change_post(tenant, model_overrides='{"marketing_email": "bedrock/nova-micro"}',
                                      override_reason="cheaper for a test campaign"))  # fmt: skip
    assert ok.status_code == 302
    change = OverrideChange.objects.get()
    assert (change.tenant, change.changed_by, change.before, change.after, change.reason) == (
        tenant, "root", {}, {"marketing_email": "bedrock/nova-micro"}, "cheaper for a test campaign")  # fmt: skip
    owner = login(tenant, Role.OWNER)
    assert owner.get(reverse("admin:routing_overridechange_changelist")).status_code == 403


def test_a_plan_in_use_can_be_neither_deleted_nor_renamed(tenant):
    client, basic = superuser_client(), Plan.objects.get(slug="basic")
    assert client.get(reverse("admin:routing_plan_delete", args=[basic.pk])).status_code == 403  # Acme is on it
    assert client.post(reverse("admin:routing_plan_delete", args=[basic.pk]), {"post": "yes"}).status_code == 403
    assert 'name="slug"' not in client.get(reverse("admin:routing_plan_change", args=[basic.pk])).content.decode()
    assert "delete_selected" not in client.get(reverse("admin:routing_plan_changelist")).content.decode()
    spare = Plan.objects.create(slug="spare", name="Spare")
    assert client.post(reverse("admin:routing_plan_delete", args=[spare.pk]), {"post": "yes"}).status_code == 302
    assert get_plan("basic") and not Plan.objects.filter(slug="spare").exists()


def test_the_seed_writes_every_listed_route_and_leaves_an_operators_edit():
    from routing import seed

    listed = [(s, b, t, m, None, n) for s, b, t, m, n in seed.TASK_ROUTES] + seed.JUDGE_ROUTES + seed.CLASSIFIER_ROUTES
    for slug, backend, task, model, fallback, max_tokens in listed:
        route = PlanRoute.objects.get(plan__slug=slug, backend=backend, task=task)
        assert (route.model.key, route.fallback and route.fallback.key, route.max_output_tokens) == (
            model, fallback, max_tokens)  # fmt: skip
    edited = PlanRoute.objects.get(plan__slug="basic", backend="bedrock", task=seed.JUDGE_TASK)
    edited.max_output_tokens = 50
    edited.save()
    PlanRoute.objects.filter(plan__slug="pro", task=seed.SUBJECT_TASK).delete()
    seed.seed_judge(ModelEntry, Plan, PlanRoute)
    seed.seed_task_routes(ModelEntry, Plan, PlanRoute)
    edited.refresh_from_db()
    assert edited.max_output_tokens == 50
    assert PlanRoute.objects.get(plan__slug="pro", backend="local", task=seed.SUBJECT_TASK).max_output_tokens == 300
