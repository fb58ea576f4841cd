"""Keyset (cursor) pagination over (created_at, id), newest first.

DRF's CursorPagination keys on one field and an offset among ties; calls share
timestamps, and rows ingested while someone pages would shift those offsets.
Keying on the unique pair (created_at, id) means a page is "the next N rows
after this exact row", so no row is lost or repeated however many arrive, and
every page is one index range scan however deep it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from django.db.models import Q, QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from logs.read.filters import filter_moment


class KeysetPagination(BasePagination):
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    page_size = 100
    max_page_size = 1000

    def paginate_queryset(self, queryset: QuerySet, request, view=None):
        self.request = request
        self.page_size_used = self._page_size(request)
        direction, position = self._decode_cursor(request)
        self.has_next = self.has_previous = False

        if position is None:
            rows = list(queryset.order_by("-created_at", "-id")[: self.page_size_used + 1])
            self.has_next = len(rows) > self.page_size_used
            rows = rows[: self.page_size_used]
        elif direction == "next":
            created_at, pk = position
            older = queryset.filter(created_at__lte=created_at).filter(
                Q(created_at__lt=created_at) | Q(id__lt=pk)
            )
            rows = list(older.order_by("-created_at", "-id")[: self.page_size_used + 1])
            self.has_next = len(rows) > self.page_size_used
            rows = rows[: self.page_size_used]
            self.has_previous = True
        else:
            created_at, pk = position
            newer = queryset.filter(created_at__gte=created_at).filter(
                Q(created_at__gt=created_at) | Q(id__gt=pk)
            )
            rows = list(newer.order_by("created_at", "id")[: self.page_size_used + 1])
            self.has_previous = len(rows) > self.page_size_used
            rows = rows[: self.page_size_used][::-1]
            self.has_next = True
        self.rows = rows
        return rows

    def get_paginated_response(self, data):
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque cursor from a previous page's next or previous link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1 to {self.max_page_size} "
                f"(default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]

    # --- links -----------------------------------------------------------------

    def get_next_link(self) -> str | None:
        if not self.has_next or not self.rows:
            return None
        return self._link("next", self.rows[-1])

    def get_previous_link(self) -> str | None:
        if not self.has_previous or not self.rows:
            return None
        return self._link("prev", self.rows[0])

    def _link(self, direction: str, row) -> str:
        payload = json.dumps([direction, row.created_at.isoformat(), row.pk])
        token = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, token)

    # --- input -----------------------------------------------------------------

    def _page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise serializers.ValidationError(
                {
                    self.page_size_query_param: [
                        f"must be a whole number from 1 to {self.max_page_size}"
                    ]
                }
            )
        return size

    def _decode_cursor(self, request) -> tuple[str, tuple[datetime, int] | None]:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:
            return "next", None
        try:
            padded = raw + "=" * (-len(raw) % 4)
            direction, created_at, pk = json.loads(base64.urlsafe_b64decode(padded))
            moment = datetime.fromisoformat(created_at)
            if direction not in ("next", "prev") or not isinstance(pk, int):
                raise ValueError
            if moment.tzinfo is None:
                raise ValueError
            # Our links carry UTC; an edited cursor must still be a time the
            # database can compare (years, zone offset).
            moment = filter_moment(moment)
        except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
            raise serializers.ValidationError(
                {self.cursor_query_param: ["is not a valid cursor; use the next or previous link"]}
            ) from None
        return direction, (moment, pk)
