"""The calls REST API. Views are thin: scope from ``visible_calls``, filters
from ``CallFilterSet`` (→ ``filter_calls``), writes through ``ingest_calls``."""

from __future__ import annotations

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.api.throttling import IngestRateThrottle, TokenRateThrottle
from accounts.scoping import reads_every_account
from logs.api.bodies import answer_ingest, read_json_body
from logs.api.filters import CallFilterSet, check_query_parameters
from logs.api.pagination import KeysetPagination
from logs.api.permissions import CanIngest
from logs.api.serializers import (
    CallDetailSerializer,
    CallSerializer,
    HealthSerializer,
    IngestFailureSerializer,
    IngestRecordSerializer,
    IngestResultSerializer,
    StaffCallDetailSerializer,
    StaffCallSerializer,
    StatsQuerySerializer,
    StatsResponseSerializer,
    StatsRowSerializer,
)
from logs.audit import finish_export_record, record_access
from logs.ingest.service import ingest_calls
from logs.models import AccessRecord
from logs.read.export import stream_csv
from logs.read.filters import CallFilters
from logs.read.scope import visible_calls
from logs.read.stats import scoped_usage_stats, sum_stats_rows
from logs.rollups.fold import fold_lag

FILTER_PARAMETERS = tuple(CallFilterSet.base_filters)


class ScopedCallsMixin:
    """Every view here reads calls through ``visible_calls`` and the shared filters."""

    filter_backends = [DjangoFilterBackend]
    filterset_class = CallFilterSet
    throttle_classes = [TokenRateThrottle]

    def known_query_parameters(self) -> tuple[str, ...] | None:
        """The query parameters this request's endpoint reads (None: not checked)."""
        return FILTER_PARAMETERS

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        known = self.known_query_parameters()
        if known is not None:
            # DRF's own: ?format=json picks the renderer.
            check_query_parameters(request.query_params, (*known, api_settings.URL_FORMAT_OVERRIDE))

    def call_filters(self) -> CallFilters:
        """The validated filters of this request (400 naming the parameter if bad)."""
        filterset = CallFilterSet(self.request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return filterset.to_call_filters()

    def get_queryset(self):
        calls = visible_calls(self.request.user).select_related("account", "api_key", "group")
        if getattr(self, "action", None) == "retrieve":
            calls = calls.select_related("payload")
        return calls


class CallViewSet(ScopedCallsMixin, viewsets.ReadOnlyModelViewSet):
    """Calls the caller may see, newest first."""

    pagination_class = KeysetPagination
    lookup_value_regex = r"\d+"

    def known_query_parameters(self) -> tuple[str, ...] | None:
        paging = (KeysetPagination.cursor_query_param, KeysetPagination.page_size_query_param)
        return {
            "list": (*FILTER_PARAMETERS, *paging),
            # get_object applies the filters too: a call they exclude is a 404.
            "retrieve": FILTER_PARAMETERS,
            "export": FILTER_PARAMETERS,
        }.get(self.action)

    def get_serializer_class(self):
        # Internal fields (the upstream) for support staff only, by the same rule
        # that lets them read every account.
        staff = reads_every_account(self.request.user)
        if self.action == "retrieve":
            return StaffCallDetailSerializer if staff else CallDetailSerializer
        return StaffCallSerializer if staff else CallSerializer

    def retrieve(self, request, *args, **kwargs):
        call = self.get_object()
        record_access(
            user=request.user,
            action=AccessRecord.Action.VIEW_CALL,
            surface=AccessRecord.Surface.API,
            call=call,
        )
        return Response(self.get_serializer(call).data)

    @extend_schema(
        filters=True,
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV file")},
    )
    @action(detail=False, methods=["get"], url_path="export", pagination_class=None)
    def export(self, request):
        """The filtered calls as CSV (same columns as the admin export), streamed."""
        calls = self.filter_queryset(self.get_queryset())
        access = record_access(
            user=request.user,
            action=AccessRecord.Action.EXPORT,
            surface=AccessRecord.Surface.API,
            # Only the filters, checked by filter_queryset above.
            filters={
                name: request.query_params[name]
                for name in FILTER_PARAMETERS
                if name in request.query_params
            },
        )
        response = StreamingHttpResponse(
            stream_csv(calls, on_done=lambda n: finish_export_record(access, n)),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="calls-{stamp}.csv"'
        return response

    @extend_schema(
        request=IngestRecordSerializer(many=True),
        responses={
            201: IngestResultSerializer,
            400: IngestFailureSerializer,
            411: OpenApiResponse(
                description="Chunked body that this server does not decode: send Content-Length."
            ),
            413: OpenApiResponse(description="Body larger than the configured limit."),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="ingest",
        permission_classes=[CanIngest],
        throttle_classes=[IngestRateThrottle],
        # Only for the schema: the body is read by read_json_body.
        parser_classes=[JSONParser],
        filter_backends=[],
        pagination_class=None,
    )
    def ingest(self, request):
        """Write 1 to 1000 call records (docs/ingest-format.md), all or nothing."""
        limit = settings.USAGELOGS_INGEST_MAX_BODY_BYTES
        return answer_ingest(lambda: ingest_calls(read_json_body(request, limit)))


class StatsView(ScopedCallsMixin, generics.GenericAPIView):
    """Totals and trends for the same filters as the call list."""

    serializer_class = StatsResponseSerializer
    pagination_class = None

    def known_query_parameters(self) -> tuple[str, ...] | None:
        return (*FILTER_PARAMETERS, *StatsQuerySerializer().fields)

    @extend_schema(
        filters=True, parameters=[StatsQuerySerializer], responses=StatsResponseSerializer
    )
    def get(self, request):
        query = StatsQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise ValidationError(query.errors)
        interval = query.validated_data["interval"]
        group_by = query.validated_data.get("group_by")
        scope = {"user": request.user, "filters": self.call_filters()}
        rows = scoped_usage_stats(**scope, interval=interval, group_by=group_by)
        # Every call is in exactly one row: the totals are the rows added up.
        totals = sum_stats_rows(rows) if rows else scoped_usage_stats(**scope, interval=None)[0]
        return Response(
            {
                "time_zone": timezone.get_current_timezone_name(),
                "interval": interval,
                "group_by": group_by,
                "totals": StatsRowSerializer(totals).data,
                "results": StatsRowSerializer(rows, many=True).data,
            }
        )


class HealthView(generics.GenericAPIView):
    """Whether folding keeps up: how many rollup deltas wait, and for how long.

    Totals and stats are exact either way (they add what is pending); a long
    backlog only makes them slower. ``status`` is ``behind`` when the oldest
    delta has waited longer than ``USAGELOGS_FOLD_BEHIND_SECONDS``, for a
    monitor to alert on. Any authenticated caller may ask: the answer holds
    counts and times only, no account's data.
    """

    pagination_class = None
    filter_backends: list = []
    throttle_classes = [TokenRateThrottle]

    @extend_schema(responses=HealthSerializer)
    def get(self, request):
        lag = fold_lag()
        behind = lag["oldest_pending_seconds"] > settings.USAGELOGS_FOLD_BEHIND_SECONDS
        return Response(HealthSerializer({"status": "behind" if behind else "ok", **lag}).data)
