"""STIX/TAXII timestamps: parse, normalise to a fixed-width UTC string, and compare."""

from __future__ import annotations

from datetime import UTC, datetime

from mamori.intel.errors import IntelError

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_timestamp(text: str, *, where: str = "timestamp") -> datetime:
    """Parse an RFC 3339 timestamp (as STIX and TAXII write them) into an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if "." in value:
        # Python accepts at most 6 fractional digits: trim nanosecond precision.
        head, _, rest = value.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{(digits + '000000')[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise IntelError(
            f"not a valid timestamp: {text!r}",
            where=where,
            hint="use RFC 3339, e.g. 2024-01-31T12:00:00.000Z",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """Write a datetime as a fixed-width UTC timestamp with microseconds, so text order is time order."""
    return moment.astimezone(UTC).strftime(_FORMAT)


def normalise_timestamp(text: str, *, where: str = "timestamp") -> str:
    """Rewrite any RFC 3339 timestamp into the fixed-width form used as a sort key in the store."""
    return format_timestamp(parse_timestamp(text, where=where))


def now_timestamp() -> str:
    """The current time in the store's fixed-width form."""
    return format_timestamp(datetime.now(UTC))
