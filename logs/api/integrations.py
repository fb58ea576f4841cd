"""Endpoints that take a gateway's own records (docs/integrations/). Thin: the
body is read as the calls ingest reads it, the mapping is in ``logs.integrations``."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.parsers import JSONParser

from accounts.api.throttling import IngestRateThrottle
from logs.api.bodies import answer_ingest, read_body
from logs.api.permissions import CanIngest
from logs.api.serializers import IngestFailureSerializer, IngestResultSerializer
from logs.integrations.litellm import ingest_litellm, parse_body

# What LiteLLM sends (every log format as application/json), and NDJSON's own types.
LITELLM_CONTENT_TYPES = ("application/json", "application/x-ndjson", "application/jsonl")


class LiteLLMIngestView(generics.GenericAPIView):
    """Calls from a LiteLLM proxy's ``generic_api`` logging callback
    (docs/integrations/litellm.md): its StandardLoggingPayload as a JSON list
    (``log_format: json_array``), one per line (``ndjson``) or one object
    (``single``). All or nothing, as ``POST /api/v1/calls/ingest/``."""

    permission_classes = [CanIngest]
    throttle_classes = [IngestRateThrottle]
    # Only for the schema: the body is read by read_body.
    parser_classes = [JSONParser]
    filter_backends: list = []
    pagination_class = None

    @extend_schema(
        request={"application/json": OpenApiTypes.ANY},
        responses={
            201: IngestResultSerializer,
            400: IngestFailureSerializer,
            411: OpenApiResponse(
                description="Chunked body that this server does not decode: send Content-Length."
            ),
            413: OpenApiResponse(description="Body larger than the configured limit."),
        },
    )
    def post(self, request):
        limit = settings.USAGELOGS_INGEST_MAX_BODY_BYTES
        return answer_ingest(
            lambda: ingest_litellm(
                parse_body(read_body(request, limit, content_types=LITELLM_CONTENT_TYPES))
            )
        )
