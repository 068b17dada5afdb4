"""Every API error, whatever raised it, answers in one envelope: {"error": {"code", "message", "fields"?, "details"?}}."""

import pytest
from rest_framework.exceptions import Throttled
from rest_framework.test import APIClient

from campaigns.models import Campaign, PromptTemplate
from saas.api_errors import api_exception_handler
from saas.schema import ERROR_CODES

API = "/api/v1"


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]) <= {"code", "message", "fields",
                                                                                       "details"}  # fmt: skip
    assert body["error"]["code"] == code and body["error"]["code"] in ERROR_CODES
    assert body["error"]["message"]
    return body["error"]


def test_validation_is_a_400_naming_each_field(owner_api, db):
    answer = owner_api.post(f"{API}/contacts/", {"external_id": "", "email": "nope", "age": -1}, format="json")
    err = error(answer, 400, "validation_error")
    assert set(err["fields"]) == {"external_id", "email", "age"}
    assert err["fields"]["email"] == ["Enter a valid email address."]
    assert err["message"].startswith("external_id: ") and "(and 2 more)" in err["message"]


def test_an_object_level_problem_is_under_non_field_errors(owner_api, db):
    both = owner_api.post(f"{API}/campaigns/{_campaign(owner_api)}/schedule/", {"cron": "0 9 * * 1", "every": 2},
                          format="json")  # fmt: skip
    err = error(both, 400, "validation_error")
    assert "not both" in err["fields"]["non_field_errors"][0] and "not both" in err["message"]


def _campaign(client) -> int:
    return client.post(f"{API}/campaigns/", {"name": "c"}, format="json").json()["id"]


def test_bad_json_is_a_parse_error(owner_api, db):
    err = error(owner_api.post(f"{API}/contacts/", "{nope", content_type="application/json"), 400, "parse_error")
    assert "JSON parse error" in err["message"]


def test_no_key_and_a_bad_key_are_401s_that_say_how_to_authenticate(db):
    client = APIClient()
    answer = client.get(f"{API}/contacts/")
    error(answer, 401, "not_authenticated")
    assert answer["WWW-Authenticate"] == "Bearer"
    client.credentials(HTTP_X_API_KEY="ms_nope_nope")
    assert "revoked" in error(client.get(f"{API}/contacts/"), 401, "authentication_failed")["message"]


def test_a_role_that_may_not_is_a_403(reviewer_api, db):
    answer = reviewer_api.post(f"{API}/contacts/", {"external_id": "x", "email": "x@example.com"}, format="json")
    assert "role" in error(answer, 403, "permission_denied")["message"]


def test_missing_and_another_tenants_objects_are_the_same_404(owner_api, outsider_api, db):
    mine = _campaign(owner_api)
    missing = error(owner_api.get(f"{API}/campaigns/{mine + 1000}/"), 404, "not_found")
    theirs = error(outsider_api.get(f"{API}/campaigns/{mine}/"), 404, "not_found")
    assert missing == theirs
    error(owner_api.get(f"{API}/campaigns/{mine}/schedule/"), 404, "not_found")


def test_a_path_no_route_matches_is_a_404_in_the_envelope(owner_api, db):
    assert "/api/docs/" in error(owner_api.get(f"{API}/no-such-thing/"), 404, "not_found")["message"]


def test_a_method_a_path_does_not_take_is_a_405(owner_api, db):
    error(owner_api.delete(f"{API}/suppressions/"), 405, "method_not_allowed")


def test_a_conflict_is_a_409_with_details(owner_api, tenant, db):
    template = PromptTemplate.objects.for_tenant(tenant).create(tenant=tenant, name="used", body="Hi")
    Campaign.objects.for_tenant(tenant).create(tenant=tenant, name="uses it", template=template)
    err = error(owner_api.delete(f"{API}/templates/{template.pk}/"), 409, "conflict")
    assert err["details"]["used_by_count"] == 1 and err["details"]["used_by"][0]["type"] == "campaign"
    assert "still used by 1 campaign" in err["message"]


def test_a_body_over_the_limit_is_a_413(owner_api, settings, db):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    answer = owner_api.post(f"{API}/contacts/", {"external_id": "x", "attributes": {"a": "b" * 2000}}, format="json")
    error(answer, 413, "request_too_large")


def test_a_body_in_another_format_is_a_415(owner_api, db):
    answer = owner_api.post(f"{API}/contacts/", "external_id: x", content_type="text/yaml")
    assert "text/yaml" in error(answer, 415, "unsupported_media_type")["message"]


def test_throttling_is_a_429_with_retry_after():
    answer = api_exception_handler(Throttled(wait=30), {"request": None, "view": None})
    assert answer.status_code == 429 and answer["Retry-After"] == "30"
    assert answer.data["error"]["code"] == "throttled" and "30 seconds" in answer.data["error"]["message"]


def test_a_bug_is_a_500_that_shows_nothing_of_the_code(owner_api, catalog, monkeypatch, caplog):
    from datasets.api import ContactViewSet

    def broken(self, request, *args, **kwargs):
        raise RuntimeError("secret internals at /srv/app/settings.py")

    monkeypatch.setattr(ContactViewSet, "list", broken)
    owner_api.raise_request_exception = False
    answer = owner_api.get(f"{API}/contacts/")
    err = error(answer, 500, "server_error")
    text = answer.content.decode()
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert set(err) == {"code", "message"}
    assert "secret internals" in caplog.text  # it is logged, for us


@pytest.mark.parametrize("payload", [[{"contact": "u0"}] * 1001])
def test_a_list_over_the_bulk_limit_is_a_validation_error(owner_api, catalog, payload):
    for endpoint in ("interactions", "suppressions"):
        err = error(owner_api.post(f"{API}/{endpoint}/", payload, format="json"), 400, "validation_error")
        assert "at most 1000" in err["message"]


@pytest.mark.parametrize("path", ["campaigns/0.5/schedule/", "contacts/.exe/", "emails/1/nope/", "v2-ish"])
def test_a_path_no_route_matches_is_json_even_with_debug_on(owner_api, db, settings, path):
    """Found by schemathesis against a dev server: with DEBUG on, Django answered these with its HTML 404 page,
    which the schema does not document (every API answer is JSON)."""
    settings.DEBUG = True
    answer = owner_api.get(f"{API}/{path}")
    error(answer, 404, "not_found")


def test_a_path_without_its_slash_says_so(owner_api, db):
    assert error(owner_api.get(f"{API}/contacts"), 404, "not_found")["message"].endswith("/api/v1/contacts/")


def test_a_post_to_a_path_no_route_matches_is_a_404_not_a_csrf_page(db, owner_api):
    """Found by schemathesis: the catch-all 404 is a plain Django view, so POSTs met the CSRF check (an HTML 403)."""
    from django.conf import settings as django_settings

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(**owner_api._credentials)
    assert "django.middleware.csrf.CsrfViewMiddleware" in django_settings.MIDDLEWARE
    error(client.post(f"{API}/campaigns/0.5/launch/", {"limit": 5}, format="json"), 404, "not_found")
