"""Every API list pages by cursor: an opaque `cursor` that points after the last row seen, in the list's fixed order,
so rows written between two page fetches are neither skipped nor shown twice (an offset would shift under them)."""

from base64 import b64decode
from urllib import parse

from django.core.exceptions import ValidationError as ModelValidationError
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import Cursor, CursorPagination

MAX_PAGE_SIZE = 1000
MAX_OFFSET = 1000  # DRF's own cutoff for rows sharing one position value


class CursorPages(CursorPagination):
    """Orders by the view's `list_ordering` (it ends in the primary key); `page_size` is 1 to 1000 and anything
    else is a 400, as is a cursor this API did not hand out."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    offset_cutoff = MAX_OFFSET
    invalid_cursor_message = "this cursor is not one this list handed out; start again without it"

    def paginate_queryset(self, queryset, request, view=None):
        self._queryset = queryset
        return super().paginate_queryset(queryset, request, view)

    def get_ordering(self, request, queryset, view):
        return tuple(getattr(view, "page_ordering", None) or getattr(view, "list_ordering", None) or ("-pk",))

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]})
        return int(raw)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            tokens = parse.parse_qs(b64decode(encoded.encode("ascii")).decode("ascii"), keep_blank_values=True)
            offset = int(tokens.get("o", ["0"])[0])
            reverse = bool(int(tokens.get("r", ["0"])[0]))
            position = tokens.get("p", [None])[0]
        except (TypeError, ValueError, UnicodeError):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from None
        if not 0 <= offset <= self.offset_cutoff or (position is not None and not self._storable(position)):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return Cursor(offset=offset, reverse=reverse, position=position)

    def _storable(self, position: str) -> bool:
        """The position must be a value of the ordering's first column that the database can compare with."""
        name = self.ordering[0].lstrip("-") if self.ordering else "pk"
        model = self._queryset.model
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        try:
            value = field.get_prep_value(field.to_python(position))
        except (ModelValidationError, TypeError, ValueError, OverflowError):
            return False
        return "\x00" not in position and not (isinstance(value, int) and not -(2**63) <= value < 2**63)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 100}
                parameter["description"] = f"Rows per page, 1 to {MAX_PAGE_SIZE} (default 100)."
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = "The `next` or `previous` link's cursor, as handed out; never made up."
        return parameters
