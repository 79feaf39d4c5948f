"""A TAXII 2.1 server (OASIS TAXII 2.1, sections 4 and 5) over the intel store.

Endpoints: discovery, API root information, status, collections, a collection, objects (GET with
``added_after``, ``limit``/``next`` paging and ``match[...]`` filters; POST returning a status),
an object (GET and DELETE), its versions, and the manifest. Every response and error carries the
TAXII media type; every object returned has passed the TLP check for the calling principal.

``build_taxii_router(store, authorize)`` gives a router the SOC service mounts into its app;
``create_taxii_app(db_path, tokens)`` gives a stand-alone app with bearer-token auth.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response

from mamori.intel.errors import IntelError
from mamori.intel.principal import Authorizer, Principal, bearer_authorizer
from mamori.intel.query import ObjectQuery, from_params
from mamori.intel.store import DEFAULT_API_ROOT, STIX_MEDIA_TYPE, CollectionInfo, IntelStore, Page

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
DEFAULT_MAX_CONTENT_LENGTH = 16 * 1024 * 1024

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    406: "Not Acceptable",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
}


class TaxiiError(Exception):
    """An error answered with a TAXII error message resource (section 3.6.1)."""

    def __init__(self, status: int, description: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = dict(headers or {})


def _taxii(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(content=content, status_code=status, media_type=TAXII_MEDIA_TYPE, headers=headers)


def _error(exc: TaxiiError) -> Response:
    body = {
        "title": _REASONS.get(exc.status, "Error"),
        "description": exc.description,
        "http_status": str(exc.status),
    }
    return _taxii(body, exc.status, exc.headers)


def _accepts_taxii(accept: str) -> bool:
    if not accept.strip():
        return True
    for media_range in accept.split(","):
        parts = [p.strip().lower() for p in media_range.split(";")]
        kind, params = parts[0], {p.partition("=")[0].strip(): p.partition("=")[2].strip() for p in parts[1:]}
        if kind in ("*/*", "application/*"):
            return True
        if kind == "application/taxii+json" and params.get("version", "2.1") == "2.1":
            return True
    return False


def _is_taxii_content(content_type: str) -> bool:
    parts = [p.strip().lower() for p in content_type.split(";")]
    params = {p.partition("=")[0].strip(): p.partition("=")[2].strip() for p in parts[1:]}
    return parts[0] == "application/taxii+json" and params.get("version", "2.1") == "2.1"


def _params(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def _query(request: Request, endpoint: str) -> ObjectQuery:
    try:
        return from_params(_params(request), endpoint)
    except IntelError as exc:
        raise TaxiiError(400, str(exc)) from None


def _envelope(page: Page, key: str, entries: list[str]) -> str:
    head = '{"more":' + ("true" if page.more else "false")
    if page.next is not None:
        head += ',"next":' + json.dumps(page.next)
    if entries:
        head += f',"{key}":[' + ",".join(entries) + "]"
    return head + "}"


def _date_headers(page: Page) -> dict[str, str]:
    if not page.items:
        return {}
    return {
        "X-TAXII-Date-Added-First": page.items[0].date_added,
        "X-TAXII-Date-Added-Last": page.items[-1].date_added,
    }


def _manifest_entry(item: Any) -> str:
    return json.dumps(
        {
            "id": item.object_id,
            "date_added": item.date_added,
            "version": item.version,
            "media_type": item.media_type,
        }
    )


Handler = Callable[[Request, Principal], Response]


def build_taxii_router(
    store: IntelStore,
    authorize: Authorizer,
    *,
    prefix: str = "/taxii2",
    title: str = "Mamori TAXII 2.1",
    description: str = "Threat intelligence shared by Mamori",
    contact: str | None = None,
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
) -> APIRouter:
    """A FastAPI router serving TAXII 2.1 from ``store``; ``authorize(request)`` gives the principal.

    ``authorize`` raises ``HTTPException`` 401 (no or bad credentials) or 403; its rights decide
    which collections a caller sees, reads and writes.
    """
    router = APIRouter(prefix=prefix)

    def guarded(handler: Handler) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                if not _accepts_taxii(request.headers.get("accept", "")):
                    raise TaxiiError(406, f"this server answers with {TAXII_MEDIA_TYPE}; set Accept to it")
                try:
                    principal = authorize(request)
                except HTTPException as exc:
                    raise TaxiiError(exc.status_code, str(exc.detail), exc.headers) from None
                return handler(request, principal)
            except TaxiiError as exc:
                return _error(exc)

        endpoint.__name__ = handler.__name__
        return endpoint

    def api_root_of(request: Request) -> str:
        root = str(request.path_params["api_root"])
        if root not in set(store.api_roots()) | {DEFAULT_API_ROOT}:
            raise TaxiiError(404, f"no API root {root!r} on this server")
        return root

    def collection_of(request: Request, principal: Principal) -> CollectionInfo:
        root = api_root_of(request)
        key = str(request.path_params["collection_id"])
        info = store.find_collection(key, api_root=root)
        if info is None or not (principal.may_read(info) or principal.may_write(info)):
            raise TaxiiError(404, f"no collection {key!r} under API root {root!r} (or no access to it)")
        return info

    def readable(request: Request, principal: Principal) -> CollectionInfo:
        info = collection_of(request, principal)
        if not principal.may_read(info):
            raise TaxiiError(403, f"{principal.name!r} may not read collection {info.id!r}")
        return info

    def writable(request: Request, principal: Principal) -> CollectionInfo:
        info = collection_of(request, principal)
        if not principal.may_write(info):
            raise TaxiiError(403, f"{principal.name!r} may not write to collection {info.id!r}")
        return info

    def collection_resource(info: CollectionInfo, principal: Principal) -> dict[str, Any]:
        resource: dict[str, Any] = {"id": info.id, "title": info.title}
        if info.description:
            resource["description"] = info.description
        if info.alias:
            resource["alias"] = info.alias
        resource.update(
            can_read=principal.may_read(info),
            can_write=principal.may_write(info),
            media_types=[STIX_MEDIA_TYPE],
        )
        return resource

    def discovery(request: Request, principal: Principal) -> Response:
        base = str(request.url_for("taxii_discovery"))
        roots = [f"{base}{root}/" for root in sorted(set(store.api_roots()) | {DEFAULT_API_ROOT})]
        body: dict[str, Any] = {
            "title": title,
            "description": description,
            "default": f"{base}{DEFAULT_API_ROOT}/",
        }
        if contact:
            body["contact"] = contact
        body["api_roots"] = roots
        return _taxii(body)

    def api_root(request: Request, principal: Principal) -> Response:
        root = api_root_of(request)
        return _taxii(
            {
                "title": f"{title}: {root}",
                "description": description,
                "versions": [TAXII_MEDIA_TYPE],
                "max_content_length": max_content_length,
            }
        )

    def status(request: Request, principal: Principal) -> Response:
        root = api_root_of(request)
        found = store.status(root, str(request.path_params["status_id"]), principal.name)
        if found is None:
            raise TaxiiError(404, f"no status {request.path_params['status_id']!r} under API root {root!r}")
        return _taxii(found.to_resource())

    def collections(request: Request, principal: Principal) -> Response:
        root = api_root_of(request)
        visible = [
            collection_resource(info, principal)
            for info in store.collections(root)
            if principal.may_read(info) or principal.may_write(info)
        ]
        return _taxii({"collections": visible} if visible else {})

    def collection(request: Request, principal: Principal) -> Response:
        return _taxii(collection_resource(collection_of(request, principal), principal))

    def get_objects(request: Request, principal: Principal) -> Response:
        info = readable(request, principal)
        page = store.objects(info.id, _query(request, "objects"), principal.reader)
        return _taxii(_envelope(page, "objects", [i.body for i in page.items]), headers=_date_headers(page))

    async def add_objects(request: Request, principal: Principal) -> Response:
        info = writable(request, principal)
        if not _is_taxii_content(request.headers.get("content-type", "")):
            raise TaxiiError(415, f"send the envelope as {TAXII_MEDIA_TYPE}")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_content_length:
            raise TaxiiError(413, f"the body exceeds max_content_length ({max_content_length} bytes)")
        raw = await request.body()
        if len(raw) > max_content_length:
            raise TaxiiError(413, f"the body exceeds max_content_length ({max_content_length} bytes)")
        try:
            envelope = json.loads(raw)
        except ValueError as exc:
            raise TaxiiError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("objects", []), list):
            raise TaxiiError(400, "the body must be a TAXII envelope: an object with an 'objects' list")
        objects = envelope.get("objects", [])
        result = store.add_objects(
            info.id,
            objects,
            source=f"taxii:{principal.name}",
            api_root=info.api_root,
            requester=principal.name,
        )
        return _taxii(result.to_resource(), 202)

    def get_object(request: Request, principal: Principal) -> Response:
        info = readable(request, principal)
        object_id = str(request.path_params["object_id"])
        query = _query(request, "object")
        if not store.has_object(info.id, object_id, principal.reader):
            raise TaxiiError(404, f"no object {object_id!r} in collection {info.id!r}")
        page = store.objects(info.id, query, principal.reader, object_id=object_id)
        return _taxii(_envelope(page, "objects", [i.body for i in page.items]), headers=_date_headers(page))

    def delete_object(request: Request, principal: Principal) -> Response:
        info = writable(request, principal)
        if not principal.may_read(info):
            raise TaxiiError(403, f"{principal.name!r} may not read (so not delete from) collection {info.id!r}")
        object_id = str(request.path_params["object_id"])
        query = _query(request, "delete")
        if not store.has_object(info.id, object_id):
            raise TaxiiError(404, f"no object {object_id!r} in collection {info.id!r}")
        store.delete_object(info.id, object_id, query)
        return Response(status_code=200, media_type=TAXII_MEDIA_TYPE)

    def versions(request: Request, principal: Principal) -> Response:
        info = readable(request, principal)
        object_id = str(request.path_params["object_id"])
        query = _query(request, "versions")
        if not store.has_object(info.id, object_id, principal.reader):
            raise TaxiiError(404, f"no object {object_id!r} in collection {info.id!r}")
        page = store.versions(info.id, object_id, query, principal.reader)
        entries = [json.dumps(i.version) for i in page.items]
        return _taxii(_envelope(page, "versions", entries), headers=_date_headers(page))

    def manifest(request: Request, principal: Principal) -> Response:
        info = readable(request, principal)
        page = store.manifest(info.id, _query(request, "manifest"), principal.reader)
        entries = [_manifest_entry(i) for i in page.items]
        return _taxii(_envelope(page, "objects", entries), headers=_date_headers(page))

    def async_guarded(handler: Callable[[Request, Principal], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                if not _accepts_taxii(request.headers.get("accept", "")):
                    raise TaxiiError(406, f"this server answers with {TAXII_MEDIA_TYPE}; set Accept to it")
                try:
                    principal = authorize(request)
                except HTTPException as exc:
                    raise TaxiiError(exc.status_code, str(exc.detail), exc.headers) from None
                response: Response = await handler(request, principal)
                return response
            except TaxiiError as exc:
                return _error(exc)

        return endpoint

    router.add_api_route("/", guarded(discovery), methods=["GET"], name="taxii_discovery")
    routes: list[tuple[str, Handler, str]] = [
        ("/{api_root}/", api_root, "GET"),
        ("/{api_root}/status/{status_id}/", status, "GET"),
        ("/{api_root}/collections/", collections, "GET"),
        ("/{api_root}/collections/{collection_id}/", collection, "GET"),
        ("/{api_root}/collections/{collection_id}/objects/", get_objects, "GET"),
        ("/{api_root}/collections/{collection_id}/manifest/", manifest, "GET"),
        ("/{api_root}/collections/{collection_id}/objects/{object_id}/", get_object, "GET"),
        ("/{api_root}/collections/{collection_id}/objects/{object_id}/", delete_object, "DELETE"),
        ("/{api_root}/collections/{collection_id}/objects/{object_id}/versions/", versions, "GET"),
    ]
    for path, handler, method in routes:
        router.add_api_route(path, guarded(handler), methods=[method], name=f"taxii_{handler.__name__}")
    router.add_api_route(
        "/{api_root}/collections/{collection_id}/objects/",
        async_guarded(add_objects),
        methods=["POST"],
        name="taxii_add_objects",
    )
    return router


def create_taxii_app(
    db_path: str | Path,
    tokens: Mapping[str, Principal],
    *,
    store: IntelStore | None = None,
    max_page_size: int = 1000,
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
) -> FastAPI:
    """A stand-alone TAXII 2.1 app over the store at ``db_path``, with bearer tokens mapped to principals."""
    intel = store or IntelStore.open(db_path, max_page_size=max_page_size)
    app = FastAPI(title="Mamori TAXII 2.1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.intel_store = intel
    app.include_router(build_taxii_router(intel, bearer_authorizer(tokens), max_content_length=max_content_length))

    @app.exception_handler(404)
    async def _not_found(request: Request, exc: Exception) -> Response:
        return _error(TaxiiError(404, f"no TAXII resource at {request.url.path}"))

    @app.exception_handler(405)
    async def _not_allowed(request: Request, exc: Exception) -> Response:
        return _taxii({"title": "Method Not Allowed", "http_status": "405"}, 405)

    return app
