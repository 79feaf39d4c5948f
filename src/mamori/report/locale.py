"""The report's words and times in one language: ``locales/{ja,en}.yaml`` read at run time, and dates
written the way a reader of that language expects (``2026年11月29日 14:05 JST`` / ``29 Nov 2026 05:05 UTC``).

The report keeps its own catalogues (not the console's) so it can be rendered outside the web app; the
keys of both files are kept in step by a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mamori.errors import MamoriError
from mamori.locales import DEFAULT_TIME_ZONES, LANGUAGES, read_catalogue

_ZONE_ABBREVIATIONS = {"Asia/Tokyo": "JST"}


def catalogue(language: str) -> dict[str, str]:
    """Every report string of one language, by dotted key (``sections.timeline``)."""
    check_language(language)
    return read_catalogue("mamori.report", language)


def check_language(language: str) -> str:
    """``language`` when the report speaks it; otherwise a MamoriError listing the languages it does."""
    if language not in LANGUAGES:
        raise MamoriError(f"no report language {language!r}", where="lang", hint=f"languages: {', '.join(LANGUAGES)}")
    return language


def time_zone(name: str | None, language: str) -> ZoneInfo:
    """The zone named, or the language's default (JST for Japanese, UTC for English); a bad name is an error."""
    wanted = name or DEFAULT_TIME_ZONES[check_language(language)]
    try:
        return ZoneInfo(wanted)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MamoriError(f"unknown time zone {wanted!r}", where="tz", hint="use an IANA name, e.g. Asia/Tokyo or UTC"
                          ) from exc


@dataclass(frozen=True)
class Words:
    """The strings, date style and time zone of one report reader."""

    language: str
    zone: ZoneInfo

    def __call__(self, key: str, **values: Any) -> str:
        """The text of ``key`` with ``{name}`` placeholders filled; a missing key shows the key itself."""
        text = catalogue(self.language).get(key, key)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        """True when the catalogue holds ``key``."""
        return key in catalogue(self.language)

    def word(self, group: str, value: str | None) -> str:
        """The translated name of a code (``status``, ``new`` -> 新規); an unknown code is shown as it is."""
        if value is None or value == "":
            return self("fields.none")
        key = f"{group}.{value}"
        return self(key) if self.has(key) else value

    @property
    def zone_label(self) -> str:
        """The zone's short name for the reader (``JST``, ``UTC``, or the IANA name)."""
        key = str(self.zone.key)
        return _ZONE_ABBREVIATIONS.get(key, "UTC" if key in {"UTC", "Etc/UTC"} else key)

    def time(self, value: datetime | None) -> str:
        """A time in the reader's zone: ``2026年11月29日 14:05 JST`` (ja), ``29 Nov 2026 05:05 UTC`` (en)."""
        if value is None:
            return self("fields.none")
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        local = value.astimezone(self.zone)
        label = self.zone_label if self.zone_label in {"JST", "UTC"} else local.strftime("%Z") or self.zone_label
        if self.language == "ja":
            return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M} {label}"
        return f"{local.day} {local:%b %Y %H:%M} {label}"

    def short_time(self, value: datetime) -> str:
        """A time with seconds for the timeline (``11/29 14:05:09`` / ``29 Nov 14:05:09``), zone shown once above."""
        local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(self.zone)
        if self.language == "ja":
            return f"{local.month}/{local.day} {local:%H:%M:%S}"
        return f"{local.day} {local:%b %H:%M:%S}"

    def duration(self, span: timedelta | float) -> str:
        """A duration in words (``2 h 5 min`` / ``2 時間 5 分``), rounded down to the minute."""
        seconds = int(span.total_seconds() if isinstance(span, timedelta) else span)
        minutes = max(0, seconds) // 60
        if minutes < 60:
            return self("units.minutes", n=minutes)
        hours, minutes = divmod(minutes, 60)
        if hours < 48:
            return self("units.hours", h=hours, m=minutes)
        days, hours = divmod(hours, 24)
        return self("units.days", d=days, h=hours)

    def size(self, n: int) -> str:
        """A byte count with thousands separators (``12,345 B``)."""
        return self("units.bytes", n=f"{n:,}")

    def join(self, items: list[str]) -> str:
        """Items joined the way the language lists them (``、`` in Japanese, ``, `` in English)."""
        return ("、" if self.language == "ja" else ", ").join(items)


def words(language: str, zone_name: str | None = None) -> Words:
    """The words of a report language and the reader's zone (default by language)."""
    return Words(check_language(language), time_zone(zone_name, language))


__all__ = ["DEFAULT_TIME_ZONES", "LANGUAGES", "Words", "catalogue", "check_language", "time_zone", "words"]
