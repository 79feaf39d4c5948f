"""Times typed into console forms: ``2026-11-29 09:00`` (or ISO 8601) read in the reader's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def local_time(value: str, zone: tzinfo) -> datetime | None:
    """The UTC instant of a typed time; a time without a zone is taken in ``zone`` (ValueError if unreadable)."""
    value = value.strip()
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("/", "-"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)
