"""Event search in the console: field filters, text, the columns shown, and times typed in the reader's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from web_fixtures import Console

from mamori.web.routes.events import columns_for
from mamori.web.timeparse import local_time


def test_a_field_filter_and_a_text_narrow_the_events(console: Console) -> None:
    with console.login("viewer") as client:
        one = client.get("/console/events", params={"field": "_host=WS-CONSOLE2", "q": "whoami", "run": "1"}).text
        none = client.get("/console/events", params={"q": "no-such-text-anywhere", "run": "1"}).text
        bad = client.get("/console/events", params={"field": "EventID", "run": "1"}).text
    assert "1 events found" in one and "suzuki" in one and "tanaka" not in one
    assert "0 events found" in none
    assert "Field filter EventID must be NAME=VALUE." in bad


def test_times_typed_in_the_form_are_read_in_the_readers_zone(console: Console) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    with console.login("viewer", language="ja") as client:
        future = client.get("/console/events", params={"since": later, "run": "1"}).text
        past = client.get("/console/events", params={"until": later, "run": "1"}).text
        wrong = client.get("/console/events", params={"since": "yesterday", "run": "1"}).text
    assert "0 件のイベント" in future and "4 件のイベント" in past
    assert "日時を読み取れません" in wrong
    assert "Asia/Tokyo" in past


def test_typed_times_without_a_zone_take_the_readers_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    assert local_time("2026-11-29 09:00", tokyo) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert local_time("2026-11-29T09:00:00Z", tokyo) == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    assert local_time("", tokyo) is None


def test_columns_follow_the_fields_the_events_have() -> None:
    events = [{"_time": "t", "_host": "h", "EventID": 1, "CommandLine": "x", "Custom": 1},
              {"_time": "t", "EventID": 2, "Other": "y", "Custom": 2}]
    assert columns_for(events) == ("_time", "_source", "_host", "EventID", "CommandLine", "Custom", "Other")
