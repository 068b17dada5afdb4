"""The API renders JSON with orjson (saas/renderers.py); callers must get what DRF's own JSONRenderer gave them."""

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings

from saas.renderers import ApiJSONRenderer

VALUES = {
    "utc": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    "naive": datetime(2026, 1, 2, 3, 4, 5),
    "day": date(2026, 1, 2),
    "clock": time(3, 4, 5, 6),
    "span": timedelta(seconds=90.5),
    "cost": Decimal("0.00012345"),
    "id": uuid.UUID(int=5),
    "lazy": gettext_lazy("Hello"),
    "error": ErrorDetail("bad", code="invalid"),
    "text": "Zoë’s “tone” 🎬",
    "numbers": [1.5, 10**18, -0.0, None, True],
    "nested": {"list": [{"a": []}]},
}


def test_the_api_answers_with_the_orjson_renderer():
    assert api_settings.DEFAULT_RENDERER_CLASSES == [ApiJSONRenderer]


def test_it_renders_the_bytes_drfs_renderer_did():
    assert ApiJSONRenderer().render(VALUES) == JSONRenderer().render(VALUES)


def test_line_separators_are_raw_utf8_where_drf_escaped_them_and_read_back_the_same():
    data = {"body": "one\u2028two\u2029three"}
    ours, drfs = ApiJSONRenderer().render(data), JSONRenderer().render(data)
    assert json.loads(ours) == json.loads(drfs) == data
    assert b"\\u2028" in drfs and "\u2028".encode() in ours


def test_an_api_answer_goes_through_it(tenant):
    from .conftest import api_client

    reply = api_client(tenant).get("/api/v1/contacts/?page_size=1")
    assert reply.status_code == 200 and reply["Content-Type"] == "application/json"
    assert isinstance(reply.renderer_context["view"].get_renderers()[0], ApiJSONRenderer)
