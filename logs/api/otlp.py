"""POST /api/v1/integrations/otlp/v1/traces: an OTLP/HTTP traces receiver.

Thin: the body is read here (with the ingest's size limit), decoded and mapped
by ``logs.integrations.otlp``, written by ``ingest_calls``. Authentication,
permission and throttling are the JSON ingest's. Every answer is what an OTLP
exporter expects, in the request's encoding (protobuf or JSON): an
``ExportTraceServiceResponse`` on success, a ``google.rpc.Status`` on failure.
See docs/integrations/opentelemetry.md.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from google.rpc import code_pb2
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from accounts.api.throttling import IngestRateThrottle
from logs.api.bodies import BodyTooLarge, LengthRequired, read_body
from logs.api.permissions import CanIngest
from logs.integrations import otlp

# The gRPC code OTLP's Status carries for each HTTP answer.
_STATUS_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    405: code_pb2.UNIMPLEMENTED,
    411: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
}


def _encoding_of(request) -> str:
    """The request's OTLP encoding; an unknown content type is answered in protobuf,
    OTLP's default."""
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    return content_type if content_type in otlp.CONTENT_TYPES else otlp.PROTOBUF


def _answer(message, status: int, encoding: str) -> HttpResponse:
    return HttpResponse(otlp.encode(message, encoding), status=status, content_type=encoding)


def _failure(status: int, message: str, encoding: str) -> HttpResponse:
    code = _STATUS_CODES.get(status, code_pb2.UNKNOWN)
    return _answer(otlp.failure_status(code, message), status, encoding)


class InRequestEncoding(BaseContentNegotiation):
    """OTLP answers in the request's encoding, whatever Accept says (an exporter
    may ask for application/x-protobuf, which no DRF renderer offers): the view
    writes its own bodies, so no renderer is chosen by Accept."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


# Not in the OpenAPI schema: the body is OTLP's, specified by OpenTelemetry
# (protobuf), which the schema could not describe; docs/integrations/ does.
@extend_schema(exclude=True)
class OtlpTracesView(APIView):
    permission_classes = [CanIngest]
    throttle_classes = [IngestRateThrottle]
    parser_classes: list = []  # the body is read raw, below
    content_negotiation_class = InRequestEncoding

    def post(self, request):
        encoding = _encoding_of(request)
        limit = settings.USAGELOGS_INGEST_MAX_BODY_BYTES
        try:
            # Another content type: 415, through handle_exception.
            raw = read_body(request, limit, content_types=otlp.CONTENT_TYPES)
            body = otlp.inflate(raw, request.META.get("HTTP_CONTENT_ENCODING", ""), limit)
            message = otlp.parse_request(body, encoding)
        except (BodyTooLarge, otlp.BodyTooLarge) as exc:
            return _failure(413, str(exc), encoding)
        except LengthRequired as exc:
            return _failure(411, str(exc), encoding)
        except otlp.UnsupportedEncoding as exc:
            return _failure(415, str(exc), encoding)
        except otlp.MalformedRequest as exc:
            return _failure(400, str(exc), encoding)
        outcome = otlp.receive(message)
        if outcome.refused:
            return _answer(otlp.refusal_status(outcome), 400, encoding)
        return _answer(otlp.success_response(outcome), 200, encoding)

    def handle_exception(self, exc):
        """Authentication, permission, throttling and content-type refusals as
        OTLP Status bodies, with their headers (WWW-Authenticate, Retry-After) kept."""
        response = super().handle_exception(exc)
        data = response.data
        detail = data.get("detail", data) if isinstance(data, dict) else data
        answer = _failure(response.status_code, str(detail), _encoding_of(self.request))
        for header in ("WWW-Authenticate", "Retry-After"):
            if header in response:
                answer[header] = response[header]
        return answer
