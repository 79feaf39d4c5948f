"""Logon geography with a user-supplied IP2Location CSV (IPv4 or IPv6) or MaxMind GeoLite2 .mmdb:
new countries and impossible travel."""

from __future__ import annotations

import ipaddress
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from mmdb_writer import write_mmdb

from mamori.detect.anomaly.geo import GeoLogonDetector, Ip2LocationCsv, open_geo_database
from mamori.errors import MamoriError

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
    assert dict(travel.detail)["route"] == "DE-JP"
    detector.learn_benign(travel)  # the same trip on another day, the other way round, stays quiet
    back = [("taro", "203.0.113.7", day + timedelta(days=3)), ("taro", "192.0.2.10", day + timedelta(days=3, hours=2))]
    assert detector.score(_logons(back)) == []


# an IP2Location IPv6 file: IPv4 ranges as ::ffff:a.b.c.d numbers, IPv6 ranges as 128-bit numbers
V4_MAPPED = 0xFFFF_0000_0000
CSV6 = f"""\
"{V4_MAPPED + 3221225984}","{V4_MAPPED + 3221226239}","JP","Japan","Tokyo","Tokyo","35.6895","139.69171"
"{int(ipaddress.IPv6Address("2001:db8::"))}","{int(ipaddress.IPv6Address("2001:db8:0:ffff:ffff:ffff:ffff:ffff"))}","JP","Japan","Osaka","Osaka","34.69374","135.50218"
"{int(ipaddress.IPv6Address("2001:db8:1::"))}","{int(ipaddress.IPv6Address("2001:db8:1:ffff:ffff:ffff:ffff:ffff"))}","DE","Germany","Hessen","Frankfurt","50.11552","8.68417"
"""
MMDB_NETWORKS = {
    "192.0.2.0/24": {"country": {"iso_code": "JP"}, "location": {"latitude": 35.6895, "longitude": 139.69171}},
    "198.51.100.0/24": {"country": {"iso_code": "JP"}, "location": {"latitude": 34.69374, "longitude": 135.50218}},
    "203.0.113.0/24": {"country": {"iso_code": "DE"}, "location": {"latitude": 50.11552, "longitude": 8.68417}},
}


def test_ip2location_ipv6_csv_resolves_ipv6_and_the_ipv4_ranges_it_holds(tmp_path: Path) -> None:
    (tmp_path / "ip2l6.csv").write_text(CSV6, encoding="utf-8")
    geo = open_geo_database(tmp_path / "ip2l6.csv")
    addresses = ["192.0.2.10", "2001:db8::5", "2001:db8:1::9", "2001:db8:2::1", "::ffff:192.0.2.7", "fe80::1%eth0"]
    found = geo.lookup(addresses)
    assert found["country"].to_list() == ["JP", "JP", "DE", None, "JP", None]
    assert found["lat"].to_list()[:3] == [35.6895, 34.69374, 50.11552]


def test_impossible_travel_between_ipv6_logons_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "ip2l6.csv").write_text(CSV6, encoding="utf-8")
    detector = GeoLogonDetector(open_geo_database(tmp_path / "ip2l6.csv"))
    detector.fit(_logons([("taro", "2001:db8::5", T0 + timedelta(days=d)) for d in range(5)]))
    found = detector.score(_logons([("taro", "2001:db8:1::9", T0 + timedelta(days=4, hours=1))]))
    assert [next(iter(dict(a.detail))) for a in found] == ["country", "travel"]


def test_a_geolite2_mmdb_file_is_read_with_the_maxminddb_package(tmp_path: Path) -> None:
    pytest.importorskip("maxminddb")
    write_mmdb(tmp_path / "GeoLite2-City.mmdb", MMDB_NETWORKS)
    geo = open_geo_database(tmp_path / "GeoLite2-City.mmdb")
    found = geo.lookup(["192.0.2.10", "203.0.113.7", "10.0.0.1", "2001:db8::1", "not-an-ip"])
    assert found["country"].to_list() == ["JP", "DE", None, None, None]
    assert found["lon"][1] == 8.68417
    detector = GeoLogonDetector(geo)
    detector.fit(_logons([("taro", "192.0.2.10", T0 + timedelta(days=d)) for d in range(5)]))
    found_new = detector.score(_logons([("taro", "203.0.113.7", T0 + timedelta(days=4, hours=1))]))
    assert {next(iter(dict(a.detail))) for a in found_new} == {"country", "travel"}


def test_an_mmdb_without_the_geoip_extra_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mmdb(tmp_path / "GeoLite2-City.mmdb", MMDB_NETWORKS)
    monkeypatch.setitem(sys.modules, "maxminddb", None)  # as if the package were not installed
    with pytest.raises(MamoriError) as error:
        open_geo_database(tmp_path / "GeoLite2-City.mmdb")
    assert "GeoLite2-City.mmdb" in str(error.value) and "mamori[geoip]" in str(error.value)


def test_a_missing_or_unreadable_geolocation_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MamoriError, match=r"nothere\.csv: geolocation database not found"):
        open_geo_database(tmp_path / "nothere.csv")
    (tmp_path / "bad.csv").write_text("ip_from,ip_to,country_code,country_name\n", encoding="utf-8")
    with pytest.raises(MamoriError, match=r"bad\.csv: not an IP2Location CSV"):
        open_geo_database(tmp_path / "bad.csv")
