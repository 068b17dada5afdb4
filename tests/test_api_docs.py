"""The API describes itself: an OpenAPI 3 document that generates without a warning, with every operation's
request, answers and errors, and Swagger UI served from our own static files."""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import reset_generator_stats
from drf_spectacular.generators import SchemaGenerator

from saas.urls import router
from tests.test_api import ENDPOINTS

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def schema():
    reset_generator_stats()
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_schema_generates_and_validates_without_a_warning(tmp_path):
    """What CI runs: `manage.py spectacular --validate --fail-on-warn` fails on any warning or error."""
    reset_generator_stats()
    out = tmp_path / "openapi.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(out))
    document = json.loads(out.read_text())
    assert document["openapi"].startswith("3.") and document["paths"]


def test_every_route_of_the_router_is_in_the_schema(schema):
    prefixes = {path.split("/")[3] for path in schema["paths"]}
    assert prefixes == set(ENDPOINTS) == {prefix for prefix, _, _ in router.registry}
    assert len(list(operations(schema))) >= 50


def test_every_operation_has_a_summary_a_tag_its_answers_and_its_errors(schema):
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        assert operation.get("summary") or operation.get("description"), where
        assert operation["tags"], where
        codes = set(operation["responses"])
        assert any(code.startswith("2") for code in codes), where
        assert {"401", "429"} <= codes, where
        if "{" in path:
            assert "404" in codes, where
        if method in ("post", "put", "patch"):
            assert {"400", "403", "415"} <= codes, where
        for code, answer in operation["responses"].items():
            if code.startswith("4"):
                assert answer["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (where, code)
        assert operation["security"] == [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}], where


def test_the_custom_actions_name_their_bodies_and_answers(schema):
    paths = schema["paths"]
    ref = "#/components/schemas/"

    def body(path, method="post"):
        return paths[path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]

    def answer(path, code, method="post"):
        return paths[path][method]["responses"][code]["content"]["application/json"]["schema"]["$ref"]

    assert body("/api/v1/campaigns/{id}/launch/") == ref + "LaunchRequest"
    assert answer("/api/v1/campaigns/{id}/launch/", "202") == ref + "CampaignRun"
    assert answer("/api/v1/campaigns/{id}/launch/", "409") == ERROR_REF
    assert body("/api/v1/campaigns/{id}/schedule/") == ref + "ScheduleRequest"
    assert answer("/api/v1/campaigns/{id}/schedule/", "200", "get") == ref + "ScheduleState"
    for action in ("pause", "resume"):
        assert answer(f"/api/v1/campaigns/{{id}}/{action}/", "200") == ref + "ScheduleState"
    assert answer("/api/v1/runs/{id}/send/", "202") == ref + "RunSend"
    assert answer("/api/v1/runs/{id}/cancel/", "409") == ERROR_REF
    assert body("/api/v1/emails/{id}/reject/") == ref + "RejectRequest"
    assert body("/api/v1/emails/{id}/edit/") == ref + "EditRequest"
    assert body("/api/v1/emails/{id}/regenerate/") == ref + "RegenerateRequest"
    for action in ("approve", "reject", "edit", "mark_sent"):
        assert answer(f"/api/v1/emails/{{id}}/{action}/", "200") == ref + "GeneratedEmail"
        assert answer(f"/api/v1/emails/{{id}}/{action}/", "409") == ERROR_REF
    for action in ("regenerate", "send_again"):
        assert answer(f"/api/v1/emails/{{id}}/{action}/", "202") == ref + "GeneratedEmail"
    assert answer("/api/v1/interactions/", "207") == ref + "InteractionBulk"
    assert answer("/api/v1/suppressions/", "207") == ref + "SuppressionBulk"
    assert body("/api/v1/interactions/") == ref + "InteractionOneOrManyRequest"
    one_or_many = schema["components"]["schemas"]["InteractionOneOrManyRequest"]["oneOf"]
    assert one_or_many[0] == {"$ref": ref + "InteractionRequest"} and one_or_many[1]["maxItems"] == 1000


def test_the_error_component_is_the_envelope(schema):
    components = schema["components"]
    error = components["schemas"]["Error"]
    assert error["required"] == ["error"]
    body = components["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "fields", "details"}
    assert set(body["required"]) == {"code", "message"}
    codes = components["schemas"]["ErrorCodeEnum"]["enum"]
    assert {"validation_error", "not_found", "conflict", "throttled", "server_error"} <= set(codes)
    schemes = components["securitySchemes"]
    assert schemes["ApiKeyBearer"] == {**schemes["ApiKeyBearer"], "type": "http", "scheme": "bearer"}
    assert schemes["ApiKeyHeader"] == {**schemes["ApiKeyHeader"], "type": "apiKey", "in": "header",
                                       "name": "X-API-Key"}  # fmt: skip


def test_lists_document_their_cursor_page_size_and_filters(schema):
    def query(path):
        return {p["name"]: p for p in schema["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}

    for endpoint in set(ENDPOINTS) - {"usage"}:  # usage is sums, one answer: not paged
        params = query(f"/api/v1/{endpoint}/")
        assert {"cursor", "page_size"} <= set(params), endpoint
        assert params["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    assert {"attr", "updated_since", "unsubscribed"} <= set(query("/api/v1/contacts/"))
    assert query("/api/v1/contacts/")["attr"]["schema"]["type"] == "array"
    assert {"run", "campaign", "status", "model"} <= set(query("/api/v1/emails/"))
    assert {"campaign", "status"} <= set(query("/api/v1/runs/"))
    assert "cursor" not in query("/api/v1/emails/{id}/") and "run" not in query("/api/v1/campaigns/{id}/ticks/")
    assert "cursor" in query("/api/v1/campaigns/{id}/ticks/")
    assert {"group_by", "since", "until", "campaign"} == set(query("/api/v1/usage/"))
    assert {"email", "run", "campaign", "kind", "actor", "since", "until"} <= set(query("/api/v1/audit-log/"))
    assert {"prefix", "revoked"} <= set(query("/api/v1/api-keys/"))


def test_the_schema_is_served_without_a_key(client, db):
    answer = client.get("/api/schema/?format=json")
    assert answer.status_code == 200
    assert answer.json()["info"]["title"] and "/api/v1/contacts/" in answer.json()["paths"]


def test_the_docs_page_loads_its_scripts_and_styles_from_our_static_files(client, db, settings):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', html)
    urls += re.findall(r'["\']((?:https?:)?//[^"\']+)["\']', html)
    assets = [url for url in urls if re.search(r"\.(js|css|png)(\?|$)", url)]
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets), assets
    assert any(url.endswith("swagger-ui.css") for url in assets), assets
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"external URL on the docs page: {url}"
    for url in assets:
        assert url.startswith("/" + settings.STATIC_URL.lstrip("/")), url
        assert finders.find(url.removeprefix("/" + settings.STATIC_URL.lstrip("/"))), f"{url} is not a static file"
    assert "/api/schema/" in html  # the page reads our schema


def test_the_walkthrough_names_only_operations_that_exist(schema):
    """The docs page's description walks a CRM developer through the whole job (load, webhooks, launch, review,
    send); every method and path it names, and every webhook event, is one the API really has."""
    from webhooks.models import EventType

    text = schema["info"]["description"]
    named = re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^`?]*)", text)
    assert len(named) >= 8, named
    for method, path in named:
        assert method.lower() in schema["paths"].get(path, {}), f"{method} {path} is not in the schema"
    actions = {path.rstrip("/").rsplit("/", 1)[-1] for path in schema["paths"]}
    for action in ("preview", "launch", "schedule", "pause", "resume", "cancel", "approve", "reject", "edit",
                   "regenerate", "test_send", "send", "unsubscribe", "resubscribe"):  # fmt: skip
        assert f"`{action}`" in text and action in actions, action
    for event in re.findall(r"`([a-z]+\.[a-z]+)`", text):
        assert event in EventType.values, event
    assert {e for e in EventType.values if e != EventType.PING} <= set(re.findall(r"`([a-z]+\.[a-z]+)`", text))
