"""The API's JSON renderer: drf-orjson-renderer (orjson encodes an email page in a tenth of the stdlib's time), set
to give the answers DRF's own JSONRenderer gave. UTC datetimes end in `Z`, and what orjson does not encode itself
goes to DRF's encoder: a Decimal is a number, a timedelta its seconds, a lazy string its text. The package's own
fallback turns those into strings, or silently into null."""

import orjson
from drf_orjson_renderer.renderers import ORJSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class ApiJSONRenderer(ORJSONRenderer):
    options = ORJSONRenderer.options | orjson.OPT_UTC_Z
    default = staticmethod(JSONEncoder().default)
