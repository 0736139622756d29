"""One cursor pagination for every list of the API.

DRF answers a cursor it cannot read with 404, as if the list were gone. A cursor is a
query parameter like any other: one that Missive did not give answers 400 naming it, in
the same shape as every other invalid parameter.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request


class CursorPage(CursorPagination):
    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: ["This cursor is not one this list gave."]}
            ) from None
