"""Translations of every console string (``locales/ja.yaml`` and ``locales/en.yaml``), language choice and
times shown in the reader's time zone.

Catalogues are nested YAML read at run time and flattened to dotted keys (``nav.alerts``). Templates call
``t("nav.alerts")``; a missing key shows the key itself, and a test keeps both catalogues in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mamori.locales import DEFAULT_TIME_ZONES, LANGUAGES, read_catalogue

DEFAULT_LANGUAGE = "en"


def catalogue(language: str) -> dict[str, str]:
    """Every string of one language, by dotted key."""
    return read_catalogue("mamori.web", language)


def negotiate(accept_language: str | None) -> str:
    """The console language for a browser's ``Accept-Language`` header (highest q first; English otherwise)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        choices.append((-quality, index, tag.strip().lower()))
    for _, _, tag in sorted(choices):
        base = tag.split("-")[0]
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def zone(name: str | None, language: str) -> ZoneInfo:
    """The time zone named, or the language's default (JST for Japanese, UTC for English)."""
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONES[language])
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONES[language])


@dataclass(frozen=True)
class Translator:
    """The strings and time zone of one reader."""

    language: str
    time_zone: ZoneInfo

    def __call__(self, key: str, **values: Any) -> str:
        """The text of ``key`` in this language, with ``{name}`` placeholders filled from ``values``."""
        text = catalogue(self.language).get(key, key)
        return text.format(**values) if values else text

    def time(self, value: datetime | str | None, seconds: bool = False) -> str:
        """A time in the reader's zone, e.g. ``2026-11-29 16:05 JST`` (empty for None)."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return str(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo("UTC"))
        local = value.astimezone(self.time_zone)
        pattern = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
        return local.strftime(pattern)


def translator(language: str, time_zone: str | None = None) -> Translator:
    """A translator for a language (unknown ones fall back to English) and an optional zone name."""
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    return Translator(language, zone(time_zone, language))
