"""The organisation's working calendar for behaviour baselines: which local hour of the day and which
kind of day (workday or weekend) an event falls on, in the organisation's time zone.

Stored event times are UTC; people keep office hours by the local clock. A baseline that splits its
seasons by UTC hour calls 09:00 in Tokyo (00:00 UTC) the middle of the night, so every detector
with time-of-day or day-of-week seasonality classifies moments through a :class:`Calendar`. Mamori
is built first for Japanese organisations: the zone defaults to ``Asia/Tokyo``, and the service's
``anomaly_timezone`` setting overrides it (any IANA name, ``UTC`` included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

DEFAULT_TIMEZONE = "Asia/Tokyo"
OFFICE_HOURS = (8, 19)  # local hours [start, end) counted as office time


def check_timezone(name: str) -> str:
    """``name`` when it is an IANA time zone this machine knows; a ValueError saying what to give otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as Asia/Tokyo or UTC") from exc
    return name


@dataclass(frozen=True)
class Calendar:
    """Local office hours and workdays (Monday to Friday) of the organisation in ``timezone``."""

    timezone: str = DEFAULT_TIMEZONE
    office: tuple[int, int] = OFFICE_HOURS

    def __post_init__(self) -> None:
        check_timezone(self.timezone)

    def local(self, moment: pl.Expr) -> pl.Expr:
        """The moment on the organisation's clock (naive times are read as UTC, as stored events are)."""
        return moment.dt.convert_time_zone(self.timezone)

    def clock(self, moment: datetime) -> datetime:
        """One moment on the organisation's clock, for the times an explanation gives (naive: UTC)."""
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return aware.astimezone(ZoneInfo(self.timezone))

    def hour(self, moment: pl.Expr) -> pl.Expr:
        """Local hour of the day, 0-23."""
        return self.local(moment).dt.hour().cast(pl.Int32)

    def office_hours(self, moment: pl.Expr) -> pl.Expr:
        """True within local office hours, the busy season of a day (any day of the week)."""
        hour = self.hour(moment)
        return (hour >= self.office[0]) & (hour < self.office[1])

    def workday(self, moment: pl.Expr) -> pl.Expr:
        """True on a local Monday to Friday, False on a weekend."""
        return self.local(moment).dt.weekday() <= 5

    def local_date(self, moment: pl.Expr) -> pl.Expr:
        """The local calendar date (a night's events after local midnight belong to the next day)."""
        return self.local(moment).dt.date()

    def season_text(self, workday: bool | None, office: bool) -> tuple[str, str]:
        """A season in English and Japanese, the zone named: ``workdays 08:00-19:00 Asia/Tokyo``
        (``workday`` None: every day of the week)."""
        start, end = self.office
        days = {True: ("workdays", "平日"), False: ("weekends", "週末"), None: ("all days", "全曜日")}
        days_en, days_ja = days[workday]
        if office:
            return (f"{days_en} {start:02d}:00-{end:02d}:00 {self.timezone}",
                    f"{days_ja} {start}時〜{end}時（{self.timezone}）")
        return (f"{days_en} outside {start:02d}:00-{end:02d}:00 {self.timezone}",
                f"{days_ja} {start}時〜{end}時以外（{self.timezone}）")
