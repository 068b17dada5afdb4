"""An outsider's probe: every route of the URL resolver, with every method, real and unknown ids, with and without
a format suffix, empty and junk bodies. Nothing may answer 5xx.

API routes are called with the test tenant's API key, admin routes as a staff owner and as a superuser, the rest
anonymously. Each request runs in a savepoint that is rolled back, so every request sees the same data (a DELETE
or an admin "delete" really deletes, and the next request still finds the row)."""

import json
import logging
from collections import Counter
from datetime import UTC, datetime
from http.cookies import SimpleCookie

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.test import Client, RequestFactory
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import URLResolver, get_resolver
from django.utils.regex_helper import normalize
from django_celery_beat.models import ClockedSchedule, IntervalSchedule, SolarSchedule
from rest_framework.test import APIClient

from campaigns.models import (
    BatchRecord,
    Campaign,
    CampaignRun,
    CampaignTick,
    DeliveryReport,
    EmailEvent,
    EmailStatus,
    GeneratedEmail,
    PromptTemplate,
)
from campaigns.schedules import campaign_schedule
from campaigns.unsubscribe import unsubscribe_url
from datasets.models import ConsentEvent, ConsentSource
from recommendations.models import RecommenderConfig, RecommenderModel
from recommendations.services import recommender_train
from routing.models import LLMCall
from tenants.models import ApiKey, Role
from tenants.scoping import TenantOwned, tenant_scope
from tenants.services import membership_add
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

from .conftest import api_client, make_catalog

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
UNKNOWN = ("no-such-thing",)  # unknown numbers: another tenant's ids are exactly that
API_JUNK = {
    "name": ["x"],
    "cron": {"a": 1},
    "timezone": 5,
    "limit": "lots",
    "reason": None,
    "subject": 123,
    "body": [],
    "template": "abc",
    "audience": "everyone",
    "n_items": 10**20,
    "email": "not-an-email",
    "external_id": "x" * 500,
    "contact": 1.5,
    "item": {},
    "timestamp": "yesterday",
    "event_type": None,
    "age": -1,
    "attributes": "x",
    "genres": "Drama",
    "promotion_share": "NaN",
    "include_genres": [None],
    "max_maturity": 99999,
    "year": "1e999",
    "unsubscribed": "maybe",
    "system": "{{ x",
    "id": -1,
}
API_BODIES = (None, API_JUNK, b'{"name": ', [1, "x", {"contact": None}])


def tenant_world(tenant, prefix: str) -> dict:
    """One row of every kind for `tenant`, keyed by model."""
    contacts, items = make_catalog(tenant, n_contacts=3, n_items=4, prefix=prefix)
    with tenant_scope(tenant):
        template = PromptTemplate.objects.create(tenant=tenant, name=f"{prefix}tpl", body="Hi {{ contact.first_name }}")
        campaign = Campaign.objects.create(tenant=tenant, name=f"{prefix}camp", template=template)
        # The other tenant's run is over: a run moved onto its campaign meets no "one active run" rule first.
        run = CampaignRun.objects.create(tenant=tenant, campaign=campaign, status="completed" if prefix else "running")
        email = GeneratedEmail.objects.create(
            tenant=tenant,
            run=run,
            contact=contacts[0],
            subject="S",
            body="B",
            items=[{"id": items[0].external_id, "title": items[0].title}],
        )
        GeneratedEmail.objects.create(tenant=tenant, run=run, contact=contacts[1], status=EmailStatus.APPROVED)
        campaign_schedule(campaign=campaign, cron="0 9 * * 1")
        rows = {
            BatchRecord: BatchRecord.objects.create(tenant=tenant, run=run, contact=contacts[2], fields={}),
            EmailEvent: EmailEvent.objects.create(tenant=tenant, email=email, kind="approved"),
            CampaignTick: CampaignTick.objects.create(tenant=tenant, campaign=campaign, outcome="launched", run=run),
            ConsentEvent: ConsentEvent.objects.create(
                tenant=tenant, contact=contacts[2], subscribed=True, source=ConsentSource.IMPORT, actor="test"
            ),
            RecommenderConfig: RecommenderConfig.objects.create(tenant=tenant),
            RecommenderModel: recommender_train(tenant=tenant),
            LLMCall: LLMCall.objects.create(
                tenant=tenant,
                task="marketing_email",
                model_key="m",
                provider="local",
                model_id="m",
                route_reason="test",
            ),
        }
        hook = WebhookEndpoint.objects.create(tenant=tenant, url=f"https://{prefix}crm.example/hook")
        delivery = WebhookDelivery.objects.create(
            tenant=tenant, endpoint=hook, event_type="email.sent", message_id=f"msg_{prefix}{email.pk}", payload={}
        )
        rows.update({
            DeliveryReport: DeliveryReport.objects.create(
                tenant=tenant, email=email, address=contacts[0].email, kind="delivered", provider="test"
            ),
            WebhookEndpoint: hook, WebhookDelivery: delivery,
            WebhookAttempt: WebhookAttempt.objects.create(tenant=tenant, delivery=delivery, status_code=200),
        })  # fmt: skip
        interaction = contacts[0].interactions.first()
    key, _ = ApiKey.objects.issue(tenant=tenant, name=f"{prefix}key")
    rows.update({type(row): row for row in (template, campaign, run, email, contacts[0], items[0], interaction, key)})
    rows[type(tenant)] = tenant
    rows["token"] = unsubscribe_url(tenant.pk, contacts[0].pk).rstrip("/").rsplit("/", 1)[-1]
    return rows


@pytest.fixture
def world(tenant, other_tenant):
    IntervalSchedule.objects.create(every=5, period="minutes")
    SolarSchedule.objects.create(event="sunrise", latitude=1, longitude=1)
    ClockedSchedule.objects.create(clocked_time=datetime(2030, 1, 1, tzinfo=UTC))
    return tenant_world(tenant, ""), tenant_world(other_tenant, "g")


def routes(resolver=None, prefix=""):
    """(regex, callback) for every URL pattern, includes flattened."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        regex = prefix + pattern.pattern.regex.pattern.removeprefix("^")
        if isinstance(pattern, URLResolver):
            yield from routes(pattern, regex)
        else:
            yield regex, pattern.callback


def route_model(callback):
    """The model a route serves: a DRF viewset's scope_model or an admin view's ModelAdmin's model."""
    if hasattr(callback, "cls"):
        return getattr(callback.cls, "scope_model", None), getattr(callback.cls, "lookup_field", "pk")
    model_admin = getattr(callback, "model_admin", None) or getattr(
        getattr(callback, "__wrapped__", None), "__self__", None
    )
    return getattr(model_admin, "model", None), "pk"


def param_values(name: str, callback, mine: dict, theirs: dict) -> list[str]:
    """Values for a path parameter, the test tenant's own row first: it gets every method and body; the others
    (another tenant's row, unknown and malformed ids) every method with an empty body."""
    model, lookup = route_model(callback)
    user_model = get_user_model()
    if name == "format":
        return ["json", "api"]
    if name == "app_label":
        return sorted({m._meta.app_label for m in admin.site._registry}) + ["nope"]
    if name == "content_type_id":
        return [str(ContentType.objects.get_for_model(Campaign).pk), "999999"]
    if name == "token":
        return [mine["token"], "junk"]
    if name == "url":
        return ["nope/"]
    if model is user_model or name == "id":
        return [str(user.pk) for user in user_model.objects.order_by("pk")[:2]] + list(UNKNOWN)
    if model is None:  # e.g. the admin's "view on site" object id: a campaign's
        return [str(mine[Campaign].pk), *UNKNOWN]
    real = [row for row in (mine.get(model), theirs.get(model)) if row is not None]
    if not real and not issubclass(model, TenantOwned):
        real = list(model._default_manager.all()[:1])
    unknown = UNKNOWN if len(real) > 1 else ("999999999", *UNKNOWN)  # another tenant's id is an unknown number
    return [str(getattr(row, lookup)) for row in real] + list(unknown)


def urls(mine: dict, theirs: dict):
    """Every concrete URL, each route with each combination of values for its parameters, and whether it is the
    primary one (every parameter at its first value)."""
    seen = set()
    for regex, callback in routes():
        for template, params in normalize(regex):
            filled = [({}, True)]
            for name in params:
                values = param_values(name, callback, mine, theirs)
                filled = [
                    ({**f, name: v}, first and (v == values[0] or name == "format"))
                    for f, first in filled
                    for v in values
                ]
            for values, primary in filled:
                url = "/" + template % values
                if url not in seen:
                    seen.add(url)
                    yield url, callback, primary


def admin_form_junk(callback, theirs: dict) -> list[dict]:
    """Form posts for an admin page: every field of its model with a wrong value (foreign keys: another tenant's
    row), and on a list page, each of its actions over real rows."""
    model, _ = route_model(callback)
    if model is None:
        return [{"username": "x", "password": "x", "old_password": "x", "new_password1": "a", "new_password2": "b"}]
    junk = {"post": "yes", "_save": "Save", "memberships-TOTAL_FORMS": "x", "memberships-INITIAL_FORMS": "1"}
    for field in model._meta.get_fields():
        if isinstance(field, models.ForeignKey | models.OneToOneField):
            other = theirs.get(field.related_model)
            junk[field.name] = str(other.pk) if other is not None else "999999999"
        elif isinstance(field, models.JSONField):
            junk[field.name] = "{not json"
        elif isinstance(field, models.IntegerField | models.FloatField | models.DecimalField):
            junk[field.name] = "9" * 40
        elif isinstance(field, models.DateTimeField | models.DateField):
            junk[field.name] = "yesterday"
        elif isinstance(field, models.Field):
            junk[field.name] = "x\x00" + "y" * 5000
    bodies = [junk]
    model_admin = admin.site._registry.get(model)
    if model_admin is not None and callback.__name__ == "changelist_view":
        rows = getattr(model, "dangerously_unscoped", model._default_manager)
        ids = [str(pk) for pk in rows.values_list("pk", flat=True)[:5]]
        for action in model_admin.get_actions(superuser_request()) or ():
            bodies.append({"action": action, "_selected_action": ids, "select_across": "0", "index": "0"})
        bodies.append({"action": "nope", "_selected_action": ["junk"]})
    return bodies


def superuser_request():
    """A request to list an admin's actions with (each is then posted as the walking persona)."""
    request = RequestFactory().get("/")
    request.user = get_user_model().objects.filter(is_superuser=True).first()
    return request


def send(client, method: str, url: str, body):
    """One request in a savepoint that is always rolled back (a logout too: its cookie is put back)."""
    if body is None:
        data, content_type = "", "application/octet-stream"
    elif isinstance(client, APIClient):
        data, content_type = body if isinstance(body, bytes) else json.dumps(body), "application/json"
    else:
        data, content_type = encode_multipart(BOUNDARY, body), MULTIPART_CONTENT
    cookies = SimpleCookie(client.cookies.output(header="", sep="\n"))
    with transaction.atomic():
        response = client.generic(method, url, data, content_type=content_type)
        transaction.set_rollback(True)
    client.cookies = cookies
    return response


def requests_for(who: str, url: str, callback, primary: bool, theirs: dict):
    """(method, body) pairs. The API: on a primary URL every method, writes with each junk body; on the others
    every method with an empty body (an unknown id is refused before any body is read). The admin, whose views
    tell only POST from the rest: the owner every method and junk posts on primary URLs, GET on the others; the
    superuser, who sees more pages but the same views, GET and the posts on primary URLs."""
    if who == "superuser":
        methods = ("GET", "POST") if primary else ()
    elif who == "owner":
        methods = METHODS if primary else ("GET",)
    else:
        methods = METHODS
    for method in methods:
        yield method, None
        if primary and method in ("POST", "PUT", "PATCH"):
            if who == "api-key":
                yield from ((method, body) for body in API_BODIES[1:])
            elif method == "POST":
                yield from ((method, body) for body in admin_form_junk(callback, theirs))


def walk(clients: dict, mine: dict, theirs: dict) -> tuple[list[str], Counter]:
    failures, counts = [], Counter()
    for url, callback, primary in urls(mine, theirs):
        area = "api" if url.startswith("/api/") else "admin" if url.startswith("/admin/") else "public"
        for who, client in clients[area].items():
            for method, body in requests_for(who, url, callback, primary, theirs):
                response = send(client, method, url, body)
                counts[who] += 1
                if response.status_code >= 500:
                    exc = getattr(response, "exc_info", None)
                    said = f"{exc[0].__name__}: {str(exc[1])[:300]}" if exc else response.content[:300]
                    failures.append(f"{who} {method} {url} {str(body)[:60]!r} → {response.status_code} {said}")
    return failures, counts


@pytest.mark.django_db
def test_no_route_answers_5xx(world, tenant, bedrock_settings):
    mine, theirs = world
    owner = membership_add(tenant=tenant, username="olga", role=Role.OWNER).user
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    admins = {}
    for name, user in (("owner", owner), ("superuser", root)):
        admins[name] = Client(raise_request_exception=False)
        admins[name].force_login(user)
    api = api_client(tenant, Role.OWNER)
    api.raise_request_exception = False
    clients = {"api": {"api-key": api}, "admin": admins, "public": {"anonymous": Client(raise_request_exception=False)}}
    logger = logging.getLogger("django.request")
    level, logger.level = logger.level, logging.CRITICAL  # 4xx warnings: expected here, and slow to print
    try:
        failures, counts = walk(clients, mine, theirs)
    finally:
        logger.setLevel(level)
    assert not failures, f"{len(failures)} requests answered 5xx:\n" + "\n".join(failures)
    assert min(counts.values()) > 20 and sum(counts.values()) > 2000, counts  # the walk really walked


def test_every_app_model_is_reachable_by_the_walk():
    """The walk finds every tenant-owned model's admin pages and API routes by the resolver alone."""
    served = {route_model(callback)[0] for _, callback in routes()}
    for model in apps.get_models():
        if issubclass(model, TenantOwned):
            assert model in served, model


def test_deleting_a_template_in_use_is_a_409_naming_the_campaigns(owner_api, scoped):
    template = PromptTemplate.objects.create(tenant=scoped, name="used", body="Hi")
    for name in ("spring", "summer"):
        Campaign.objects.create(tenant=scoped, name=name, template=template)
    response = owner_api.delete(f"/api/v1/templates/{template.pk}/")
    assert response.status_code == 409
    body = response.json()["error"]
    assert body["code"] == "conflict" and "'spring', 'summer'" in body["message"]
    assert body["details"]["used_by_count"] == 2
    assert {row["name"] for row in body["details"]["used_by"]} == {"spring", "summer"}
    assert PromptTemplate.objects.filter(pk=template.pk).exists()


@pytest.mark.parametrize(
    "path",
    [
        "admin:campaigns_campaignrun",
        "admin:campaigns_generatedemail",
        "admin:recommendations_recommendermodel",
        "admin:routing_llmcall",
    ],
)
def test_rows_the_product_writes_cannot_be_added_by_hand(tenant, path):
    from django.urls import reverse

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    assert client.get(reverse(f"{path}_add")).status_code == 403
    assert client.post(reverse(f"{path}_add"), {"tenant": tenant.pk}).status_code == 403
    assert reverse(f"{path}_add") not in client.get(reverse(f"{path}_changelist")).content.decode()  # no "Add"


@pytest.mark.parametrize("action", ["launch", "schedule", "send", "cancel", "approve", "reject", "edit", "regenerate"])
def test_every_action_answers_on_its_format_suffix(owner_api, world, bedrock_settings, action):
    mine, _ = world
    target = {"launch": "campaigns", "schedule": "campaigns", "send": "runs", "cancel": "runs"}.get(action, "emails")
    row = {"campaigns": mine[Campaign], "runs": mine[CampaignRun], "emails": mine[GeneratedEmail]}[target]
    body = {"cron": "0 9 * * 1", "reason": "tone", "subject": "S", "body": "B"}
    answers = []
    for url in (f"/api/v1/{target}/{row.pk}/{action}/", f"/api/v1/{target}/{row.pk}/{action}.json"):
        with transaction.atomic():  # both from the same state
            answers.append(owner_api.post(url, body, format="json"))
            transaction.set_rollback(True)
    plain, suffixed = answers
    assert suffixed.status_code == plain.status_code < 500, (suffixed.content, plain.content)
    assert suffixed["Content-Type"] == "application/json"
