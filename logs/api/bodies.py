"""Reading an ingest request's body, and the answer every JSON ingest endpoint
gives (the calls ingest, the LiteLLM integration): one place, so a gateway
sees the same statuses and shapes whichever endpoint it posts to."""

from __future__ import annotations

import time
from collections.abc import Callable

from rest_framework import status
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.response import Response

from logs.ingest import fastjson
from logs.ingest.errors import IngestError, RecordError
from logs.ingest.service import IngestResult


def answer_ingest(write: Callable[[], IngestResult]) -> Response:
    """Run ``write`` (read the body and ingest it) and answer: 201 with what was
    created and what was already present, 413 or 411 for a body that cannot
    be read, 400 with every problem by record and field.

    The answer carries the batch's cost in a ``Server-Timing`` header: ``cpu``
    is this worker's CPU time for it (the body read and parsed, every record
    validated, redacted, hashed and written) apart from waits for the
    database, the ingest path's own cost (bench/ingest_load.py reports it).
    """
    started_cpu, started = time.thread_time(), time.perf_counter()
    try:
        # The parsed body is the batch's bulk: no collection while it lives
        # (see paused_gc); it is gone when ``write`` returns.
        with fastjson.paused_gc():
            result = write()
    except BodyTooLarge as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    except LengthRequired as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_411_LENGTH_REQUIRED)
    except IngestError as exc:
        return Response(
            {"detail": str(exc), "errors": [e.as_dict() for e in exc.errors]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return Response(
        {"created": result.created, "already_present": result.duplicates},
        status=status.HTTP_201_CREATED,
        headers={"Server-Timing": server_timing(started_cpu, started)},
    )


def server_timing(started_cpu: float, started: float) -> str:
    """``cpu``: this thread's CPU time since ``started_cpu``; ``total``: the wall
    time since ``started`` (both in ms, as Server-Timing has them)."""
    cpu = (time.thread_time() - started_cpu) * 1000
    total = (time.perf_counter() - started) * 1000
    return f"cpu;dur={cpu:.1f}, total;dur={total:.1f}"


class BodyTooLarge(Exception):
    pass


class LengthRequired(Exception):
    pass


def read_json_body(request, limit: int):
    """The request's JSON, read here rather than by DRF's parser.

    DRF reads a JSON body through ``HttpRequest.body``, which Django caps at
    DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) for every view; ingest batches are
    larger by design and get their own limit. Reading it here also turns any
    unreadable body — bad encoding, bad JSON, nesting too deep for the
    parser — into the same 400 shape as a bad record.

    A chunked body (``Transfer-Encoding: chunked``, no Content-Length) is read
    too, where the server decodes it: Django reads only Content-Length bytes
    and would see an empty body.
    """
    raw = read_body(request, limit, content_types=("application/json",))
    try:
        # fastjson.loads: orjson where it gives json.loads's result, json.loads otherwise.
        return fastjson.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise IngestError(
            [RecordError(None, "", f"the body is not valid JSON: {reason}")]
        ) from None


def read_body(request, limit: int, *, content_types: tuple[str, ...]) -> bytes:
    """The request's body as bytes, at most ``limit`` of them (else BodyTooLarge),
    for a content type among ``content_types`` (else 415). Chunked bodies as
    ``_read_body`` says."""
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type not in content_types:
        raise UnsupportedMediaType(content_type or "none")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise BodyTooLarge(f"Request body is {length} bytes; the limit is {limit} bytes.")
    # DRF's request hands META and read() on to Django's.
    raw = _read_body(request, limit + 1)
    if len(raw) > limit:
        raise BodyTooLarge(f"Request body is over the limit of {limit} bytes.")
    return raw


def _read_body(request, size: int) -> bytes:
    """At most ``size`` bytes of the body, including a body sent without a length.

    Django reads Content-Length bytes of a WSGI request, so a chunked body
    (no Content-Length) reads as empty. A WSGI server that decodes chunked
    bodies says so with ``wsgi.input_terminated`` (gunicorn always does): its
    input can then be read up to its end. A server that does not (Django's
    runserver) hands over the raw connection, where reading would block or read
    the chunk framing: that request is answered 411 Length Required. An ASGI
    server has already gathered the whole body, which Django reads as usual.
    """
    meta = request.META
    if meta.get("CONTENT_LENGTH") or "wsgi.input" not in meta:
        return request.read(size)
    if meta.get("wsgi.input_terminated"):
        stream = meta["wsgi.input"]
        chunks: list[bytes] = []
        left = size
        while left > 0:
            chunk = stream.read(left)  # a raw stream may return less than asked for
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise LengthRequired(
            "This server cannot read a chunked request body: send the body with a "
            "Content-Length header."
        )
    return request.read(size)
