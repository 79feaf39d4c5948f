"""The STIX 2.1 object store behind the TAXII server, the feeds and the IOC matcher.

Objects are kept per collection and per version (``modified``, else ``created``, else the time they
were added). ``date_added`` is strictly increasing across the store, so ``added_after`` polling and
``next`` paging never skip or repeat an object. Every read can be made on behalf of a ``Reader``, in
which case TLP is enforced in the SQL itself (so paging stays exact): see ``mamori.intel.tlp``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased

from mamori.intel.errors import IntelError
from mamori.intel.models import (
    CollectionRow,
    FeedStateRow,
    IndicatorRow,
    IntelBase,
    ObjectRow,
    StatusRow,
)
from mamori.intel.query import ObjectQuery
from mamori.intel.records import (
    CollectionInfo,
    FeedState,
    IndicatorRecord,
    Page,
    Reader,
    Status,
    StoredObject,
)
from mamori.intel.timestamps import format_timestamp, normalise_timestamp, now_timestamp, parse_timestamp
from mamori.intel.tlp import Tlp, level_of_marking_definition, tlp_of

STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
DEFAULT_API_ROOT = "api"
_CHUNK = 500


@dataclass
class _Prepared:
    rows: list[dict[str, Any]] = field(default_factory=list)
    successes: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def _version_of(obj: Mapping[str, Any], date_added: str) -> str:
    for key in ("modified", "created"):
        if isinstance(obj.get(key), str):
            return normalise_timestamp(obj[key], where=f"{obj.get('id')}.{key}")
    return date_added


def _spec_version_of(obj: Mapping[str, Any]) -> str:
    """The STIX version of an object: its ``spec_version``; without one, a STIX 2.0 object if it has
    ``created`` (2.1 requires ``spec_version`` there), else a 2.1 cyber-observable (where it is optional)."""
    if isinstance(obj.get("spec_version"), str):
        return str(obj["spec_version"])
    return "2.0" if "created" in obj else "2.1"


def _check_object(obj: Any) -> str | None:
    """Why an object cannot be stored, or None if it can."""
    if not isinstance(obj, Mapping):
        return "not a JSON object"
    kind, ident = obj.get("type"), obj.get("id")
    if not isinstance(kind, str) or not kind:
        return "missing 'type'"
    if not isinstance(ident, str) or not ident.startswith(kind + "--"):
        return "'id' must be '<type>--<uuid>'"
    try:
        uuid.UUID(ident[len(kind) + 2 :])
    except ValueError:
        return "'id' does not end in a UUID"
    spec = obj.get("spec_version", "2.1")
    if spec not in ("2.0", "2.1"):
        return f"unsupported spec_version {spec!r}"
    if kind == "indicator" and not isinstance(obj.get("pattern"), str):
        return "indicator without 'pattern'"
    return None


class IntelStore:
    """STIX objects in collections, TAXII status resources, indicators and feed state, in SQL."""

    def __init__(self, engine: Engine, *, max_page_size: int = 1000) -> None:
        self.engine = engine
        self.max_page_size = max_page_size
        IntelBase.metadata.create_all(engine)
        self._write_lock = threading.Lock()
        self._markings: dict[str, Tlp | None] = {}
        with Session(engine) as session:
            last = session.scalar(select(func.max(ObjectRow.date_added)))
            for body in session.scalars(select(ObjectRow.body).where(ObjectRow.object_type == "marking-definition")):
                obj = json.loads(body)
                self._markings[obj["id"]] = level_of_marking_definition(obj)
        self._last_added = parse_timestamp(last) if last else datetime(1970, 1, 1, tzinfo=UTC)

    @classmethod
    def open(cls, location: str | Path, *, max_page_size: int = 1000) -> IntelStore:
        """Open (creating if needed) the store at a SQLite path or a SQLAlchemy database URL."""
        text = str(location)
        if "://" in text:
            return cls(create_engine(text), max_page_size=max_page_size)
        path = Path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return cls(engine, max_page_size=max_page_size)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    # ------------------------------------------------------------------ collections

    def create_collection(
        self,
        title: str,
        *,
        collection_id: str | None = None,
        api_root: str = DEFAULT_API_ROOT,
        description: str = "",
        alias: str | None = None,
        default_tlp: Tlp = Tlp.GREEN,
        outgoing: bool = False,
    ) -> CollectionInfo:
        """Create a collection (or return it unchanged if one with this id or alias already exists)."""
        existing = self.find_collection(collection_id or alias or "", api_root=api_root)
        if existing is not None:
            return existing
        info = CollectionInfo(
            id=collection_id or str(uuid.uuid4()),
            api_root=api_root,
            title=title,
            description=description,
            alias=alias,
            default_tlp=default_tlp,
            outgoing=outgoing,
        )
        with self._session() as session:
            session.add(
                CollectionRow(
                    id=info.id,
                    api_root=api_root,
                    title=title,
                    description=description,
                    alias=alias,
                    default_tlp=int(default_tlp),
                    outgoing=outgoing,
                )
            )
        return info

    @staticmethod
    def _info(row: CollectionRow) -> CollectionInfo:
        return CollectionInfo(
            id=row.id,
            api_root=row.api_root,
            title=row.title,
            description=row.description,
            alias=row.alias,
            default_tlp=Tlp(row.default_tlp),
            outgoing=row.outgoing,
        )

    def collections(self, api_root: str | None = None) -> list[CollectionInfo]:
        """All collections, or those of one API root, in a stable order."""
        stmt = select(CollectionRow).order_by(CollectionRow.title, CollectionRow.id)
        if api_root is not None:
            stmt = stmt.where(CollectionRow.api_root == api_root)
        with Session(self.engine) as session:
            return [self._info(row) for row in session.scalars(stmt)]

    def api_roots(self) -> list[str]:
        """The API roots that hold at least one collection."""
        with Session(self.engine) as session:
            return sorted(session.scalars(select(CollectionRow.api_root).distinct()))

    def find_collection(self, key: str, *, api_root: str | None = None) -> CollectionInfo | None:
        """A collection by id or alias, or None."""
        if not key:
            return None
        stmt = select(CollectionRow).where(or_(CollectionRow.id == key, CollectionRow.alias == key))
        if api_root is not None:
            stmt = stmt.where(CollectionRow.api_root == api_root)
        with Session(self.engine) as session:
            row = session.scalars(stmt).first()
            return self._info(row) if row else None

    def require_collection(self, key: str) -> CollectionInfo:
        """A collection by id or alias, or an error naming it."""
        info = self.find_collection(key)
        if info is None:
            raise IntelError(f"no collection {key!r}", where="collection", hint="see `mamori intel list --collections`")
        return info

    def known_markings(self) -> dict[str, Tlp | None]:
        """Marking definitions seen by this store, by id, with their TLP level (None if not TLP)."""
        return dict(self._markings)

    # ------------------------------------------------------------------ writes

    def _next_date_added(self) -> str:
        moment = max(datetime.now(UTC), self._last_added + timedelta(microseconds=1))
        self._last_added = moment
        return format_timestamp(moment)

    def add_objects(
        self,
        collection_id: str,
        objects: Sequence[Any],
        *,
        source: str = "",
        default_tlp: Tlp | None = None,
        audience: Iterable[str] = (),
        api_root: str = DEFAULT_API_ROOT,
        default_confidence: int = 50,
        requester: str = "",
    ) -> Status:
        """Store objects in a collection; one status says which succeeded and why others failed.

        An object whose id and version are already in the collection counts as a success and is not
        stored twice, so re-importing a feed is harmless.
        """
        info = self.find_collection(collection_id)
        if info is None:
            raise IntelError(f"no collection {collection_id!r}", where="collection")
        fallback = info.default_tlp if default_tlp is None else default_tlp
        audience_text = "".join(f"|{name}" for name in sorted(set(audience)))
        audience_text = audience_text + "|" if audience_text else ""
        request_timestamp = now_timestamp()
        prepared = _Prepared()
        learned = self._learn_markings(objects)
        with self._write_lock, self._session() as session:
            self._raise_marked(session, learned)
            for start in range(0, len(objects), _CHUNK):
                chunk = objects[start : start + _CHUNK]
                self._prepare(session, info, chunk, prepared, source, fallback, audience_text)
            if prepared.rows:
                session.execute(insert(ObjectRow), prepared.rows)
                self._upsert_indicators(session, prepared.rows, source, default_confidence)
            status = Status(
                id=str(uuid.uuid4()),
                status="complete",
                request_timestamp=request_timestamp,
                total_count=len(objects),
                success_count=len(prepared.successes),
                failure_count=len(prepared.failures),
                pending_count=0,
                successes=tuple(prepared.successes),
                failures=tuple(prepared.failures),
            )
            session.add(
                StatusRow(
                    id=status.id,
                    api_root=api_root,
                    requester=requester,
                    status=status.status,
                    request_timestamp=request_timestamp,
                    total_count=status.total_count,
                    success_count=status.success_count,
                    failure_count=status.failure_count,
                    pending_count=0,
                    details=json.dumps({"successes": prepared.successes, "failures": prepared.failures}),
                )
            )
        if prepared.duplicates and source:
            self.note_sources(prepared.duplicates, source)
        return status

    def _learn_markings(self, objects: Sequence[Any]) -> dict[str, Tlp | None]:
        """Register marking definitions first, so objects that reference them are marked right."""
        learned: dict[str, Tlp | None] = {}
        for obj in objects:
            if isinstance(obj, Mapping) and obj.get("type") == "marking-definition" and _check_object(obj) is None:
                level = level_of_marking_definition(obj)
                if obj["id"] not in self._markings or self._markings[obj["id"]] != level:
                    learned[obj["id"]] = level
        self._markings.update(learned)
        return learned

    def _raise_marked(self, session: Session, learned: Mapping[str, Tlp | None]) -> None:
        """Objects stored before their marking definition arrived (held back as TLP:RED until then)
        get their true level now."""
        for marking_id in learned:
            pattern = f'%"{marking_id}"%'
            rows = session.execute(
                select(ObjectRow.seq, ObjectRow.object_id, ObjectRow.body, CollectionRow.default_tlp)
                .join(CollectionRow, CollectionRow.id == ObjectRow.collection_id)
                .where(ObjectRow.body.like(pattern))
            ).all()
            for row in rows:
                level = int(tlp_of(json.loads(row.body), Tlp(row.default_tlp), self._markings, unknown=Tlp.RED))
                session.execute(update(ObjectRow).where(ObjectRow.seq == row.seq).values(tlp=level))
                session.execute(update(IndicatorRow).where(IndicatorRow.object_id == row.object_id).values(tlp=level))

    def _prepare(
        self,
        session: Session,
        info: CollectionInfo,
        chunk: Sequence[Any],
        prepared: _Prepared,
        source: str,
        fallback: Tlp,
        audience: str,
    ) -> None:
        ids = {obj["id"] for obj in chunk if isinstance(obj, Mapping) and isinstance(obj.get("id"), str)}
        existing = set(
            session.execute(
                select(ObjectRow.object_id, ObjectRow.version).where(
                    ObjectRow.collection_id == info.id, ObjectRow.object_id.in_(ids)
                )
            ).tuples()
        )
        for obj in chunk:
            problem = _check_object(obj)
            ident = str(obj.get("id", "")) if isinstance(obj, Mapping) else ""
            if problem is None:
                try:
                    date_added = self._next_date_added()
                    version = _version_of(obj, date_added)
                except IntelError as exc:
                    problem = exc.message
            if problem is not None:
                failure = {"id": ident, "message": problem}
                if isinstance(obj, Mapping) and "modified" in obj:
                    failure["version"] = str(obj["modified"])
                prepared.failures.append(failure)
                continue
            if (ident, version) in existing:
                prepared.successes.append({"id": ident, "version": version, "message": "already stored"})
                if obj["type"] == "indicator":
                    prepared.duplicates.append(ident)
                continue
            existing.add((ident, version))
            if obj["type"] == "marking-definition":
                self._markings[ident] = level_of_marking_definition(obj)
            prepared.rows.append(
                {
                    "collection_id": info.id,
                    "object_id": ident,
                    "object_type": obj["type"],
                    "spec_version": _spec_version_of(obj),
                    "version": version,
                    "date_added": date_added,
                    "tlp": int(tlp_of(obj, fallback, self._markings, unknown=Tlp.RED)),
                    "audience": audience,
                    "source": source,
                    "body": json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
                }
            )
            prepared.successes.append({"id": ident, "version": version})

    def _upsert_indicators(
        self, session: Session, rows: list[dict[str, Any]], source: str, default_confidence: int
    ) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["object_type"] == "indicator":
                current = latest.get(row["object_id"])
                if current is None or row["version"] >= current["version"]:
                    latest[row["object_id"]] = row
        if not latest:
            return
        known: dict[str, IndicatorRow] = {}
        keys = list(latest)
        for start in range(0, len(keys), _CHUNK):
            part = keys[start : start + _CHUNK]
            known.update(
                (ind.object_id, ind)
                for ind in session.scalars(select(IndicatorRow).where(IndicatorRow.object_id.in_(part)))
            )
        fresh: list[dict[str, Any]] = []
        for object_id, row in latest.items():
            obj = json.loads(row["body"])
            previous = known.get(object_id)
            sources = set(previous.sources.split("\n")) if previous and previous.sources else set()
            if source:
                sources.add(source)
            values = {
                "object_id": object_id,
                "version": row["version"],
                "name": str(obj.get("name", "")),
                "pattern": obj["pattern"],
                "pattern_type": str(obj.get("pattern_type", "stix")),
                "valid_from": normalise_timestamp(obj.get("valid_from", row["date_added"]), where=object_id),
                "valid_until": normalise_timestamp(obj["valid_until"], where=object_id)
                if obj.get("valid_until")
                else None,
                "revoked": bool(obj.get("revoked", False)),
                "confidence": int(obj.get("confidence", default_confidence)),
                "tlp": row["tlp"],
                "sources": "\n".join(sorted(sources)),
                "date_added": row["date_added"],
            }
            if previous is None:
                fresh.append(values)
            elif row["version"] >= previous.version:
                session.execute(update(IndicatorRow).where(IndicatorRow.object_id == object_id).values(**values))
            elif source and source not in sources - {source}:
                session.execute(
                    update(IndicatorRow).where(IndicatorRow.object_id == object_id).values(sources=values["sources"])
                )
        if fresh:
            session.execute(insert(IndicatorRow), fresh)

    def note_sources(self, object_ids: Iterable[str], source: str) -> int:
        """Record that indicators already stored were also reported by ``source`` (de-duplication)."""
        ids = list(dict.fromkeys(object_ids))
        changed = 0
        with self._write_lock, self._session() as session:
            for start in range(0, len(ids), _CHUNK):
                rows = session.scalars(
                    select(IndicatorRow).where(IndicatorRow.object_id.in_(ids[start : start + _CHUNK]))
                )
                for row in rows:
                    sources = {s for s in row.sources.split("\n") if s}
                    if source and source not in sources:
                        row.sources = "\n".join(sorted(sources | {source}))
                        changed += 1
        return changed

    def delete_object(self, collection_id: str, object_id: str, query: ObjectQuery) -> int:
        """Delete the versions of an object that match the version filters (all versions by default)."""
        query = query if query.versions else ObjectQuery(versions=("all",), spec_versions=query.spec_versions)
        with self._write_lock, self._session() as session:
            table = aliased(ObjectRow)
            conds = self._conditions(table, collection_id, query, None, object_id)
            seqs = list(session.scalars(select(table.seq).where(*conds)))
            if seqs:
                session.execute(delete(ObjectRow).where(ObjectRow.seq.in_(seqs)))
                remaining = session.scalar(select(func.count()).where(ObjectRow.object_id == object_id))
                if not remaining:
                    session.execute(delete(IndicatorRow).where(IndicatorRow.object_id == object_id))
            return len(seqs)

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _visible(table: Any, reader: Reader | None) -> ColumnElement[bool]:
        if reader is None:
            return true()
        shareable: ColumnElement[bool] = table.tlp <= int(Tlp.GREEN)
        if not reader.partner:
            return shareable
        amber = and_(
            table.tlp.in_([int(Tlp.AMBER), int(Tlp.AMBER_STRICT)]),
            or_(table.audience == "", table.audience.contains(f"|{reader.name}|", autoescape=True)),
        )
        return or_(shareable, amber)

    def _conditions(
        self,
        table: Any,
        collection_id: str,
        query: ObjectQuery,
        reader: Reader | None,
        object_id: str | None = None,
    ) -> list[ColumnElement[bool]]:
        base: list[ColumnElement[bool]] = [table.collection_id == collection_id, self._visible(table, reader)]
        if object_id is not None:
            base.append(table.object_id == object_id)
        if query.ids:
            base.append(table.object_id.in_(query.ids))
        if query.types:
            base.append(table.object_type.in_(query.types))
        latest_spec = not query.spec_versions and self._mixed_spec_versions(collection_id)
        if query.spec_versions:
            base.append(table.spec_version.in_(query.spec_versions))
        elif latest_spec:
            base.append(table.spec_version == self._latest_spec_version(table, reader))
        if query.added_after:
            base.append(table.date_added > query.added_after)
        versions = query.versions or ("last",)
        if "all" in versions:
            return base
        choices: list[ColumnElement[bool]] = []
        stamps = [v for v in versions if v not in ("first", "last")]
        if stamps:
            choices.append(table.version.in_(stamps))
        for keyword, agg in (("first", func.min), ("last", func.max)):
            if keyword in versions:
                inner = aliased(ObjectRow)
                inner_conds = [
                    inner.collection_id == table.collection_id,
                    inner.object_id == table.object_id,
                    self._visible(inner, reader),
                ]
                if query.spec_versions:
                    inner_conds.append(inner.spec_version.in_(query.spec_versions))
                elif latest_spec:
                    inner_conds.append(inner.spec_version == self._latest_spec_version(inner, reader))
                if query.added_after:
                    inner_conds.append(inner.date_added > query.added_after)
                choices.append(table.version == select(agg(inner.version)).where(*inner_conds).scalar_subquery())
        base.append(or_(*choices))
        return base

    def _mixed_spec_versions(self, collection_id: str) -> bool:
        """Whether a collection holds anything but STIX 2.1 (only then is "latest spec version" a filter)."""
        stmt = select(ObjectRow.seq).where(ObjectRow.collection_id == collection_id, ObjectRow.spec_version != "2.1")
        with self.engine.connect() as connection:
            return connection.execute(stmt.limit(1)).first() is not None

    def _latest_spec_version(self, table: Any, reader: Reader | None) -> Any:
        """The newest spec_version of the same object (TAXII 2.1: the default when none is asked for)."""
        other = aliased(ObjectRow)
        return (
            select(func.max(other.spec_version))
            .where(
                other.collection_id == table.collection_id,
                other.object_id == table.object_id,
                self._visible(other, reader),
            )
            .scalar_subquery()
        )

    def _page(self, stmt: Any, table: Any, query: ObjectQuery, session: Session) -> tuple[list[Any], bool, str | None]:
        limit = min(query.limit or self.max_page_size, self.max_page_size)
        if query.next:
            stmt = stmt.where(table.seq > int(query.next))
        rows = list(session.execute(stmt.order_by(table.seq).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, more, (str(rows[-1].seq) if more else None)

    def objects(
        self,
        collection_id: str,
        query: ObjectQuery,
        reader: Reader | None = None,
        *,
        object_id: str | None = None,
    ) -> Page:
        """One page of objects of a collection (or of one object's versions), filtered and TLP-checked."""
        table = aliased(ObjectRow)
        conds = self._conditions(table, collection_id, query, reader, object_id)
        stmt = select(
            table.seq, table.object_id, table.version, table.date_added, table.spec_version, table.body
        ).where(*conds)
        with Session(self.engine) as session:
            rows, more, token = self._page(stmt, table, query, session)
        items = tuple(StoredObject(r.object_id, r.version, r.date_added, r.spec_version, r.body) for r in rows)
        return Page(items=items, more=more, next=token)

    def manifest(self, collection_id: str, query: ObjectQuery, reader: Reader | None = None) -> Page:
        """One page of manifest entries (objects without their bodies)."""
        table = aliased(ObjectRow)
        conds = self._conditions(table, collection_id, query, reader)
        stmt = select(table.seq, table.object_id, table.version, table.date_added, table.spec_version).where(*conds)
        with Session(self.engine) as session:
            rows, more, token = self._page(stmt, table, query, session)
        items = tuple(StoredObject(r.object_id, r.version, r.date_added, r.spec_version, "") for r in rows)
        return Page(items=items, more=more, next=token)

    def versions(self, collection_id: str, object_id: str, query: ObjectQuery, reader: Reader | None = None) -> Page:
        """One page of the versions of an object, oldest first."""
        query = ObjectQuery(
            added_after=query.added_after,
            limit=query.limit,
            next=query.next,
            versions=("all",),
            spec_versions=query.spec_versions,
        )
        return self.manifest_of(collection_id, object_id, query, reader)

    def manifest_of(self, collection_id: str, object_id: str, query: ObjectQuery, reader: Reader | None) -> Page:
        """Manifest entries of one object."""
        table = aliased(ObjectRow)
        conds = self._conditions(table, collection_id, query, reader, object_id)
        stmt = select(table.seq, table.object_id, table.version, table.date_added, table.spec_version).where(*conds)
        with Session(self.engine) as session:
            rows, more, token = self._page(stmt, table, query, session)
        items = tuple(StoredObject(r.object_id, r.version, r.date_added, r.spec_version, "") for r in rows)
        return Page(items=items, more=more, next=token)

    def has_object(self, collection_id: str, object_id: str, reader: Reader | None = None) -> bool:
        """Tell whether any version of an object is in the collection and visible to the reader."""
        table = aliased(ObjectRow)
        stmt = select(table.seq).where(
            table.collection_id == collection_id, table.object_id == object_id, self._visible(table, reader)
        )
        with Session(self.engine) as session:
            return session.execute(stmt.limit(1)).first() is not None

    def count(self, collection_id: str | None = None) -> int:
        """How many object versions the store (or one collection) holds."""
        stmt = select(func.count()).select_from(ObjectRow)
        if collection_id is not None:
            stmt = stmt.where(ObjectRow.collection_id == collection_id)
        with Session(self.engine) as session:
            return int(session.scalar(stmt) or 0)

    def status(self, api_root: str, status_id: str, requester: str | None = None) -> Status | None:
        """A status resource by id (only the requester's own when ``requester`` is given), or None."""
        with Session(self.engine) as session:
            row = session.get(StatusRow, status_id)
            if row is None or row.api_root != api_root or (requester is not None and row.requester != requester):
                return None
            details = json.loads(row.details)
            return Status(
                id=row.id,
                status=row.status,
                request_timestamp=row.request_timestamp,
                total_count=row.total_count,
                success_count=row.success_count,
                failure_count=row.failure_count,
                pending_count=row.pending_count,
                successes=tuple(details.get("successes", [])),
                failures=tuple(details.get("failures", [])),
            )

    # ------------------------------------------------------------------ indicators

    def indicators(self, *, at: str | None = None, include_inactive: bool = False) -> list[IndicatorRecord]:
        """Indicators in force at a time (now by default): not revoked, ``valid_from <= at < valid_until``."""
        moment = at or now_timestamp()
        stmt = select(IndicatorRow).order_by(IndicatorRow.date_added)
        if not include_inactive:
            stmt = stmt.where(
                IndicatorRow.revoked.is_(False),
                IndicatorRow.valid_from <= moment,
                or_(IndicatorRow.valid_until.is_(None), IndicatorRow.valid_until > moment),
            )
        with Session(self.engine) as session:
            return [
                IndicatorRecord(
                    object_id=row.object_id,
                    name=row.name,
                    pattern=row.pattern,
                    pattern_type=row.pattern_type,
                    valid_from=row.valid_from,
                    valid_until=row.valid_until,
                    revoked=row.revoked,
                    confidence=row.confidence,
                    tlp=Tlp(row.tlp),
                    sources=tuple(s for s in row.sources.split("\n") if s),
                    date_added=row.date_added,
                )
                for row in session.scalars(stmt)
            ]

    def indicator_frame(self, *, at: str | None = None) -> pl.DataFrame:
        """Indicators in force as a frame (the columns ``IndicatorIndex.from_frame`` reads, plus
        ``date_added``), read in bulk without building one Python object per indicator."""
        moment = at or now_timestamp()
        table = IndicatorRow.__table__
        stmt = select(
            table.c.object_id.label("indicator_id"),
            table.c.pattern,
            table.c.name,
            table.c.sources,
            table.c.confidence,
            table.c.pattern_type,
            table.c.date_added,
        ).where(
            table.c.revoked.is_(False),
            table.c.valid_from <= moment,
            or_(table.c.valid_until.is_(None), table.c.valid_until > moment),
        )
        schema = {
            "indicator_id": pl.Utf8,
            "pattern": pl.Utf8,
            "name": pl.Utf8,
            "sources": pl.Utf8,
            "confidence": pl.Int64,
            "pattern_type": pl.Utf8,
            "date_added": pl.Utf8,
        }
        with self.engine.connect() as connection:
            rows = connection.execute(stmt.order_by(table.c.date_added)).all()
        frame = pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
        return frame.with_columns(pl.col("sources").str.replace_all("\n", ", ", literal=True))

    def indicators_added_after(self, moment: str) -> list[IndicatorRecord]:
        """Indicators in force whose latest version was added after ``moment`` (for retro-hunts)."""
        return [record for record in self.indicators() if record.date_added > moment]

    def last_indicator_change(self) -> str:
        """When the indicator set last changed (the latest ``date_added``), or an empty string."""
        with Session(self.engine) as session:
            return str(session.scalar(select(func.max(IndicatorRow.date_added))) or "")

    def sightings_of(self, indicator_id: str) -> list[dict[str, Any]]:
        """The stored sightings (latest versions) of an indicator, oldest first."""
        stmt = (
            select(ObjectRow.body)
            .where(
                ObjectRow.object_type == "sighting",
                ObjectRow.body.contains(f'"{indicator_id}"', autoescape=True),
            )
            .order_by(ObjectRow.seq)
        )
        with Session(self.engine) as session:
            found = [json.loads(body) for body in session.scalars(stmt)]
        latest: dict[str, dict[str, Any]] = {}
        for obj in found:
            if obj.get("sighting_of_ref") == indicator_id:
                latest[obj["id"]] = obj
        return list(latest.values())

    def find_object(self, object_id: str) -> dict[str, Any] | None:
        """The latest stored version of an object in any collection, or None."""
        stmt = select(ObjectRow.body).where(ObjectRow.object_id == object_id).order_by(ObjectRow.version.desc())
        with Session(self.engine) as session:
            body = session.scalars(stmt.limit(1)).first()
        return json.loads(body) if body else None

    # ------------------------------------------------------------------ feed state

    def feed_state(self, name: str) -> FeedState:
        """Where a feed left off (an empty state if it never ran)."""
        with Session(self.engine) as session:
            row = session.get(FeedStateRow, name)
            if row is None:
                return FeedState(name=name)
            return FeedState(row.name, row.cursor, row.last_run, row.last_count, row.last_error)

    def save_feed_state(self, state: FeedState) -> None:
        """Record where a feed left off, atomically."""
        with self._session() as session:
            session.merge(
                FeedStateRow(
                    name=state.name,
                    cursor=state.cursor,
                    last_run=state.last_run,
                    last_count=state.last_count,
                    last_error=state.last_error,
                )
            )

    def feed_states(self) -> list[FeedState]:
        """The state of every feed that ran at least once."""
        with Session(self.engine) as session:
            return [
                FeedState(r.name, r.cursor, r.last_run, r.last_count, r.last_error)
                for r in session.scalars(select(FeedStateRow).order_by(FeedStateRow.name))
            ]


__all__ = [
    "DEFAULT_API_ROOT",
    "STIX_MEDIA_TYPE",
    "CollectionInfo",
    "FeedState",
    "IndicatorRecord",
    "IntelStore",
    "Page",
    "Reader",
    "Status",
    "StoredObject",
]
