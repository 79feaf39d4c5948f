"""Open the records database and bring its schema up to date with Alembic.

Migrations live in ``mamori/store/migrations/versions``; another room adds its own folder to
``MIGRATION_LOCATIONS`` (or passes ``extra_locations``) with revisions on their own branch, and
``migrate`` upgrades every head. SQLite gets WAL mode and a busy timeout so the pipeline (one writer)
and the API (readers, small writes) share it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mamori.errors import MamoriError

MIGRATION_LOCATIONS: list[str] = [str(Path(__file__).parent / "migrations" / "versions"),
                                   str(Path(__file__).parents[1] / "cases" / "migrations" / "versions"),
                                   str(Path(__file__).parents[1] / "cases" / "playbooks" / "migrations" / "versions"),
                                   str(Path(__file__).parents[1] / "web" / "migrations" / "versions")]


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, synchronous FULL, foreign keys, IMMEDIATE transactions and a
    30 s busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            connection.isolation_level = None  # transactions are begun below, as IMMEDIATE
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            # take the write lock at the start: a read-then-write transaction can otherwise fail at once
            # with "database is locked" when another writer committed in between (WAL snapshot)
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """The session factory every room uses (objects stay readable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


def check_service_records(data_dir: Path, database_url: str) -> None:
    """Refuse a data folder holding no records database (commands that read what ``mamori serve`` stored)."""
    if not database_url and not (data_dir / "mamori.db").is_file():
        raise MamoriError(f"no Mamori database in {data_dir}", where="--data-dir",
                          hint="give the data folder of `mamori serve` (default ./mamori-data)")


@contextlib.contextmanager
def read_service_records(url: str) -> Iterator[Session]:
    """A session on the service's records database for a command that only reads it (never migrated:
    it is the service's); a database error becomes a MamoriError naming the database."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            yield session
    except SQLAlchemyError as exc:
        raise MamoriError(f"cannot read the records database: {exc.__class__.__name__}: {exc}", where=url,
                          hint="start `mamori serve` once on this data folder to bring its schema up to date"
                          ) from exc
    finally:
        engine.dispose()


def migrate(engine: Engine, extra_locations: Sequence[str] = ()) -> None:
    """Upgrade the schema to every head of every migration location (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("version_locations", " ".join([*MIGRATION_LOCATIONS, *extra_locations]))
    config.set_main_option("path_separator", "space")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
