"""POST /api/v1/ingest: events over HTTP (JSON, NDJSON, syslog text; gzip), answered 202 only once durable.

The body is read with a size limit (compressed and decompressed), checked whole (broken JSON is a 400
naming the line), appended to the spool and acknowledged after ``fsync``. When the service is behind
(spool backlog over its limit) or too many requests are in flight, the answer is 503 or 429 with
``Retry-After``: the sender keeps the batch and retries. An ``Idempotency-Key`` makes retries safe.

``?source=<name>`` has the events parsed by that source's reader, as ``mamori hunt`` parses a file of
it (CloudTrail ``{"Records": [...]}`` bodies give one event per record, CEF lines their CEF fields...);
an unknown source is a 400 listing the known ones. Without it, JSON events keep their own field names
(Windows events become ``winjson``) and text lines are syslog.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mamori.api.auth import Ingester, Principal
from mamori.api.deps import service_of
from mamori.collect.records import has_record_reader, record_sources
from mamori.collect.spool import Entry, source_format
from mamori.sources.batch import envelope_items
from mamori.sources.registry import all_sources

router = APIRouter(prefix="/api/v1", tags=["ingest"])
MAX_IN_FLIGHT = 64
MAX_RECORDS = 200_000
_SOURCE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
GENERIC_SOURCE = "json"  # the default: JSON events under their own names, text lines as syslog
SOURCE_ALIASES = {"winlogbeat": "winjson"}  # a shipper's name for the source it ships


class IngestRefused(Exception):
    """A request the ingest refuses: status, message, optional headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise IngestRefused(413, f"body of {declared} bytes is over the {limit}-byte limit; send smaller batches")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IngestRefused(413, f"body is over the {limit}-byte limit; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise IngestRefused(400, f"body is not valid gzip: {exc}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise IngestRefused(413, f"decompressed body is over the {limit}-byte limit; send smaller batches")
    return data


def _reader_of(source: str) -> str | None:
    """The source whose reader parses the body sent with ``?source=`` (None: the generic JSON/syslog
    handling); a source the live path cannot read is a 400 that says which ones it can."""
    if source == GENERIC_SOURCE:
        return None
    name = SOURCE_ALIASES.get(source, source)
    if has_record_reader(name):
        return name
    known = ", ".join(record_sources())
    if name in all_sources():
        raise IngestRefused(400, f"source {source!r} is read from whole files, not sent as events: drop its "
                                 f"files in a tailed folder instead (sources sent as events: {known})")
    raise IngestRefused(400, f"unknown source {source!r}: use one of {known}, or leave source out to keep "
                             "JSON events under their own field names")


def _opened(values: list[Any]) -> list[Any]:
    """The values with every ``{"Records": [...]}``-style envelope replaced by its records."""
    out: list[Any] = []
    for value in values:
        items = envelope_items(value)
        out.extend(items if items is not None else (value,))
    return out


def _json_records(data: bytes, ndjson: bool, open_envelopes: bool = False) -> list[str]:
    """Validate and normalise JSON events: an array, one object, ``{"events": [...]}`` or NDJSON lines;
    with ``open_envelopes`` (a source named), ``{"Records": [...]}`` envelopes give their records."""
    values: list[Any] = []
    if ndjson:
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                values.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise IngestRefused(400, f"line {number}: not valid JSON: {exc}") from exc
            if not isinstance(values[-1], dict):
                raise IngestRefused(400, f"line {number}: an event must be a JSON object")
    else:
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise IngestRefused(400, f"not valid JSON: {exc} (send an array of objects, or NDJSON with "
                                     "Content-Type application/x-ndjson)") from exc
        if isinstance(document, dict) and isinstance(document.get("events"), list):
            document = document["events"]
        values = document if isinstance(document, list) else [document]
        for index, value in enumerate(values):
            if not isinstance(value, dict):
                raise IngestRefused(400, f"event {index}: an event must be a JSON object")
    if open_envelopes:
        values = _opened(values)
    if len(values) > MAX_RECORDS:
        raise IngestRefused(413, f"{len(values)} events in one request; the limit is {MAX_RECORDS}")
    return [orjson.dumps(v).decode() for v in values]


def _text_records(data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestRefused(400, f"body is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


@router.post("/ingest", status_code=202, summary="Send events; 202 once they are durable")
async def ingest(request: Request, source: str = "json", principal: Principal = Ingester) -> JSONResponse:
    """Accept a batch of events. Content types: application/json (array, object or {"events": [...]}),
    application/x-ndjson, text/plain (log lines). ``?source=`` names the source whose reader parses them
    (``cloudtrail``, ``okta``, ``cef``...); without it JSON keeps its field names and lines are syslog."""
    service = service_of(request)
    state = request.app.state
    try:
        if not _SOURCE.match(source):
            raise IngestRefused(400, "source must be 1-64 letters, digits, '.', '_' or '-'")
        reader = _reader_of(source)  # an unknown source is refused before the body is read
        key = request.headers.get("idempotency-key")
        if key is not None and not _KEY.match(key):
            raise IngestRefused(400, "Idempotency-Key must be 1-128 letters, digits or .:_-")
        if service.spool.full:
            service.metrics.inc("mamori_ingest_refused_total", reason="backlog")
            raise IngestRefused(503, "the service is behind; retry later", {"Retry-After": "1"})
        in_flight = getattr(state, "in_flight", 0)
        if in_flight >= MAX_IN_FLIGHT:
            service.metrics.inc("mamori_ingest_refused_total", reason="busy")
            raise IngestRefused(429, "too many ingest requests at once; retry later", {"Retry-After": "1"})
        state.in_flight = in_flight + 1
        try:
            return await _accept(request, source, reader, key, principal)
        finally:
            state.in_flight -= 1
    except IngestRefused as refused:
        if refused.status in (400, 413):
            service.metrics.inc("mamori_ingest_rejected_total", reason=str(refused.status))
        return JSONResponse({"detail": refused.message}, status_code=refused.status, headers=refused.headers)


async def _accept(request: Request, source: str, reader: str | None, key: str | None,
                  principal: Principal) -> JSONResponse:
    """Read, decode and spool one request's events (``reader``: ``_reader_of(source)``)."""
    service = service_of(request)
    limit = service.settings.max_body_bytes
    body = await _read_body(request, limit)
    if request.headers.get("content-encoding", "").lower() in ("gzip", "x-gzip", "deflate"):
        body = await asyncio.to_thread(_gunzip, body, limit)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type in ("text/plain", "application/syslog"):
        fmt, records = "syslog" if reader is None else source_format(reader), _text_records(body)
    elif content_type in ("application/json", "application/x-ndjson", "application/jsonl", "application/ndjson"):
        records = await asyncio.to_thread(_json_records, body, content_type != "application/json", reader is not None)
        fmt = "json" if reader is None else source_format(reader)
    else:
        raise IngestRefused(415, f"content type {content_type!r} is not accepted; use application/json, "
                                 "application/x-ndjson or text/plain")
    if not records:
        return JSONResponse({"accepted": 0}, status_code=202)
    pending: set[str] = request.app.state.pending_keys
    if key is not None:
        if service.spool.seen(key):
            return JSONResponse({"accepted": 0, "duplicate": True, "detail": "this Idempotency-Key was accepted "
                                 "before; nothing stored twice"}, status_code=202)
        if key in pending:
            raise IngestRefused(409, "a request with this Idempotency-Key is in progress; retry later",
                                {"Retry-After": "1"})
        pending.add(key)
    try:
        origin = f"http:{source}:{key}" if key else f"http:{source}:{principal.user}"
        entry = Entry(fmt, origin, tuple(records), time.time_ns(), key)
        seq = await asyncio.wrap_future(service.spool.append(entry))
    finally:
        if key is not None:
            pending.discard(key)
    service.metrics.inc("mamori_events_received_total", len(records), input="http")
    return JSONResponse({"accepted": len(records), "seq": seq}, status_code=202)
