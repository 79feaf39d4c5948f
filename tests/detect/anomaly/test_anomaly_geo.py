"""Logon geography with a user-supplied IP2Location CSV: new countries and impossible travel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from mamori.detect.anomaly.geo import GeoLogonDetector, Ip2LocationCsv

T0 = datetime(2026, 4, 1, tzinfo=UTC)
# documentation ranges placed in Tokyo, Osaka and Frankfurt for the test
CSV = """\
"3221225984","3221226239","JP","Japan","Tokyo","Tokyo","35.6895","139.69171"
"3325256704","3325256959","JP","Japan","Osaka","Osaka","34.69374","135.50218"
"3405803776","3405804031","DE","Germany","Hessen","Frankfurt","50.11552","8.68417"
"""


def _logons(rows: list[tuple[str, str, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_time": [t for _, _, t in rows],
            "_host": ["vpn01"] * len(rows),
            "_uid": [f"e{i}" for i in range(len(rows))],
            "EventID": ["4624"] * len(rows),
            "TargetUserName": [u for u, _, _ in rows],
            "IpAddress": [ip for _, ip, _ in rows],
        }
    ).with_columns(pl.col("_time").cast(pl.Datetime("ns", "UTC")))


def test_ip2location_csv_resolves_addresses_inside_ranges_only(tmp_path: Path) -> None:
    (tmp_path / "ip2l.csv").write_text(CSV, encoding="utf-8")
    geo = Ip2LocationCsv(tmp_path / "ip2l.csv").lookup(["192.0.2.10", "203.0.113.1", "10.0.0.1", "not-an-ip"])
    assert geo["country"].to_list() == ["JP", "DE", None, None]
    assert geo["lat"][0] == 35.6895


def test_new_country_and_impossible_travel_are_flagged_with_both_languages(tmp_path: Path) -> None:
    (tmp_path / "ip2l.csv").write_text(CSV, encoding="utf-8")
    detector = GeoLogonDetector(Ip2LocationCsv(tmp_path / "ip2l.csv"))
    history = [("taro", "192.0.2.10", T0 + timedelta(days=d)) for d in range(10)]
    history += [("taro", "198.51.100.5", T0 + timedelta(days=d, hours=3)) for d in range(10)]
    detector.fit(_logons(history))
    day = T0 + timedelta(days=11)
    batch = [
        ("taro", "198.51.100.5", day),  # Osaka: usual country, ~400 km from Tokyo: fine
        ("taro", "203.0.113.7", day + timedelta(hours=1)),  # Frankfurt one hour later
    ]
    found = detector.score(_logons(batch))
    kinds = sorted(dict(a.detail).keys().__iter__().__next__() for a in found)
    assert kinds == ["country", "travel"]
    travel = next(a for a in found if "travel" in dict(a.detail))
    assert travel.observed > 9000
    assert "km/h" in travel.explanation.en and "時速" in travel.explanation.ja
    new_country = next(a for a in found if "country" in dict(a.detail))
    assert "DE" in new_country.explanation.en and "usual countries: JP" in new_country.explanation.en
    detector.learn_benign(new_country)
    assert [a for a in detector.score(_logons(batch)) if "country" in dict(a.detail)] == []
