"""Run feeds: fetch what is new, store it (de-duplicated), remember where each feed left off.

``run_feed`` runs one feed once; ``due_feeds`` says which are due by their interval; ``poll``
runs the due ones in a loop until told to stop. A failing feed records its error and the others
go on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mamori.errors import MamoriError
from mamori.intel.feeds.config import FeedConfig
from mamori.intel.feeds.fetch import fetch_bytes
from mamori.intel.feeds.lists import read_list
from mamori.intel.feeds.misp import read_misp
from mamori.intel.feeds.stix_file import read_bundle
from mamori.intel.feeds.taxii_feed import poll_taxii
from mamori.intel.store import FeedState, IntelStore
from mamori.intel.timestamps import now_timestamp, parse_timestamp


@dataclass(frozen=True)
class FeedRun:
    """What one run of a feed did."""

    feed: str
    fetched: int
    stored: int
    failed: int
    skipped: int
    error: str = ""


def _collection(store: IntelStore, feed: FeedConfig) -> str:
    info = store.create_collection(
        "Feeds" if feed.target == "feeds" else feed.target,
        alias=feed.target,
        description="indicators from partner feeds",
        default_tlp=feed.tlp,
    )
    return info.id


def _fetch(store: IntelStore, feed: FeedConfig, state: FeedState) -> tuple[list[dict[str, Any]], str, int]:
    """Objects from a feed, the cursor to save, and how many entries were skipped."""
    if feed.kind == "taxii":
        poll = poll_taxii(feed, state.cursor)
        return list(poll.objects), poll.cursor, 0
    if feed.kind == "misp":
        cursor = json.loads(state.cursor) if state.cursor else {}
        misp = read_misp(feed, cursor)
        return list(misp.indicators), json.dumps(misp.cursor, sort_keys=True), misp.skipped
    if feed.kind in ("csv", "text"):
        result = read_list(fetch_bytes(feed.location, token=feed.token), feed)
        return list(result.indicators), now_timestamp(), result.skipped
    return read_bundle(feed.location, token=feed.token), now_timestamp(), 0


def run_feed(store: IntelStore, feed: FeedConfig) -> FeedRun:
    """Run one feed once and record its state; errors are recorded and returned, not raised."""
    state = store.feed_state(feed.name)
    try:
        objects, cursor, skipped = _fetch(store, feed, state)
        collection = _collection(store, feed)
        if feed.kind in ("csv", "text", "misp"):
            # IOC-list indicators have content-derived ids: keep the first version seen.
            known = {o["id"] for o in objects if store.has_object(collection, o["id"])}
            objects = [o for o in objects if o["id"] not in known]
            store.note_sources(known, f"feed:{feed.name}")
        status = store.add_objects(
            collection,
            objects,
            source=f"feed:{feed.name}",
            default_tlp=feed.tlp,
            default_confidence=feed.confidence,
        )
    except MamoriError as exc:
        store.save_feed_state(FeedState(feed.name, state.cursor, now_timestamp(), 0, str(exc)))
        return FeedRun(feed.name, 0, 0, 0, 0, str(exc))
    store.save_feed_state(FeedState(feed.name, cursor, now_timestamp(), status.success_count, ""))
    return FeedRun(feed.name, len(objects), status.success_count, status.failure_count, skipped)


def due_feeds(store: IntelStore, feeds: Sequence[FeedConfig], now: datetime | None = None) -> list[FeedConfig]:
    """The feeds whose interval has passed since their last run (or that never ran)."""
    moment = now or datetime.now(UTC)
    due = []
    for feed in feeds:
        state = store.feed_state(feed.name)
        if not state.last_run or parse_timestamp(state.last_run) + timedelta(seconds=feed.interval) <= moment:
            due.append(feed)
    return due


def poll(
    store: IntelStore,
    feeds: Sequence[FeedConfig],
    stop: threading.Event,
    *,
    on_run: Callable[[FeedRun], None] | None = None,
    tick: float = 30.0,
) -> None:
    """Run due feeds until ``stop`` is set, checking every ``tick`` seconds."""
    while not stop.is_set():
        for feed in due_feeds(store, feeds):
            result = run_feed(store, feed)
            if on_run is not None:
                on_run(result)
        stop.wait(tick)


__all__ = ["FeedRun", "due_feeds", "poll", "run_feed"]
