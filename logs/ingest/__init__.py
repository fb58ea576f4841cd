"""Everything that writes calls.

``ingest_calls`` (``service``) is the one way in: ``records`` validates,
``payloads`` and ``redaction`` make the bulky parts safe to keep,
``idempotency`` judges replays, ``store`` writes the batch and its pending
rollup deltas. ``fastjson`` parses bodies and writes canonical text fast,
with the standard library's results.
"""

from logs.ingest.errors import IngestError, RecordError
from logs.ingest.service import IngestResult, ingest_calls

__all__ = ["IngestError", "IngestResult", "RecordError", "ingest_calls"]
