"""IOC matching on event batches, retro-hunt over stored events, alerts and sightings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from mamori.intel.alerts import alerts_from_matches, record_sightings
from mamori.intel.errors import PatternNotSupported
from mamori.intel.matcher import IndicatorIndex, IndicatorInput, Matcher, load_mapping
from mamori.intel.patterns import Kind, compile_pattern
from mamori.intel.retrohunt import retro_hunt
from mamori.intel.store import IntelStore
from mamori.intel.tlp import Tlp

PATTERNS = {
    "ip": "[ipv4-addr:value = '203.0.113.5']",
    "net": "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    "wide": "[ipv4-addr:value ISSUBSET '10.0.0.0/8']",
    "narrow": "[ipv4-addr:value ISSUBSET '10.1.0.0/16']",
    "domain": "[domain-name:value = 'evil.example']",
    "url": "[url:value = 'http://bad.example/x']",
    "sha256": "[file:hashes.'SHA-256' = '" + "A" * 64 + "']",
    "md5": "[file:hashes.MD5 = '" + "b" * 32 + "']",
    "sha1": "[file:hashes.'SHA-1' = '" + "c" * 40 + "']",
    "email": "[email-addr:value = 'phish@evil.example']",
    "file": "[file:name = 'mimikatz.exe']",
    "ipv6": "[ipv6-addr:value = '2001:db8::1']",
    "ipv6net": "[ipv6-addr:value ISSUBSET '2001:db8:ff::/48']",
    "like": "[domain-name:value LIKE '%.bad.example' AND domain-name:value NOT = 'ok.bad.example']",
    "regex": "[url:value MATCHES '^https?://[a-z]+\\\\.example/login']",
    "either": "[ipv4-addr:value = '192.0.2.10'] OR [domain-name:value = 'other.example']",
}


def index() -> IndicatorIndex:
    return IndicatorIndex.build(
        IndicatorInput(f"indicator--{name}", pattern, name=name, sources="jpcert-feed", confidence=80)
        for name, pattern in PATTERNS.items()
    )


def events() -> pl.DataFrame:
    rows = [
        {"DestinationIp": "203.0.113.5"},
        {"DestinationIp": "198.51.100.77"},
        {"SourceIp": "10.1.2.3"},
        {"QueryName": "a.b.EVIL.example."},
        {"url": "http://bad.example/x/"},
        {"Hashes": "SHA1=" + "C" * 40 + ",MD5=" + "B" * 32 + ",SHA256=" + "a" * 64},
        {"sender": "Phish@Evil.example"},
        {"Image": r"C:\Users\x\Mimikatz.exe"},
        {"DestinationIp": "2001:DB8:0:0::1"},
        {"dst_endpoint.ip": "2001:db8:ff::5"},
        {"QueryName": "x.bad.example"},
        {"QueryName": "ok.bad.example"},
        {"url": "https://login.example/login?next=/"},
        {"url.hostname": "other.example"},
        {"DestinationIp": "8.8.8.8", "QueryName": "notevil.example", "Image": r"C:\Windows\notepad.exe"},
    ]
    columns = sorted({key for row in rows for key in row})
    data = {c: [row.get(c) for row in rows] for c in columns}
    data["_uid"] = [f"e{i}" for i in range(len(rows))]
    frame = pl.DataFrame(data, schema={c: pl.Utf8 for c in data})
    return frame.with_columns(_time=pl.lit(datetime(2024, 5, 1, tzinfo=UTC)).cast(pl.Datetime("ns", "UTC")))


EXPECTED = {
    ("e0", "ip"),
    ("e1", "net"),
    ("e2", "wide"),
    ("e2", "narrow"),
    ("e3", "domain"),
    ("e4", "url"),
    ("e5", "sha256"),
    ("e5", "md5"),
    ("e5", "sha1"),
    ("e6", "email"),
    ("e7", "file"),
    ("e8", "ipv6"),
    ("e9", "ipv6net"),
    ("e10", "like"),
    ("e12", "regex"),
    ("e13", "either"),
}


def _pairs(matches: pl.DataFrame) -> set[tuple[str, str]]:
    return {(uid, ind.removeprefix("indicator--")) for uid, ind in matches.select("_uid", "indicator_id").iter_rows()}


def test_every_observable_kind_matches_in_its_mapped_columns_and_nothing_else_does() -> None:
    matches = Matcher(index()).match(events())
    assert _pairs(matches) == EXPECTED


def test_categorical_columns_are_matched_like_text() -> None:
    frame = events().with_columns(pl.col("QueryName").cast(pl.Categorical))
    assert _pairs(Matcher(index()).match(frame)) == EXPECTED


def test_a_match_names_the_field_and_the_normalised_value() -> None:
    matches = Matcher(index()).match(events())
    domain = matches.filter(pl.col("indicator_id") == "indicator--domain").row(0, named=True)
    assert (domain["field"], domain["value"], domain["kind"]) == ("QueryName", "a.b.evil.example", "domain")
    assert domain["sources"] == "jpcert-feed" and domain["confidence"] == 80


def test_unsupported_patterns_are_refused_with_the_reason() -> None:
    with pytest.raises(PatternNotSupported, match="FOLLOWEDBY"):
        compile_pattern("[file:name = 'a'] FOLLOWEDBY [file:name = 'b']")
    with pytest.raises(PatternNotSupported, match="WITHIN"):
        compile_pattern("[file:name = 'a'] WITHIN 5 SECONDS")
    with pytest.raises(PatternNotSupported, match="windows-registry-key"):
        compile_pattern("[windows-registry-key:key = 'HKLM\\\\x']")
    with pytest.raises(PatternNotSupported, match="pattern_type 'yara'"):
        compile_pattern("rule x {}", pattern_type="yara")
    built = IndicatorIndex.build([IndicatorInput("indicator--bad", "[a:b = 'c'] AND [d:e = 'f']")])
    assert built.refused and built.refused[0][0] == "indicator--bad"


def test_simple_patterns_written_without_spaces_take_the_bulk_path() -> None:
    built = IndicatorIndex.build([IndicatorInput("indicator--x", "[ipv4-addr:value='192.0.2.9']")])
    assert built.exact[Kind.IP]["value"].to_list() == ["192.0.2.9"] and not built.expressions


def test_equality_or_lists_become_hash_lookups_not_expressions() -> None:
    compiled = compile_pattern("[ipv4-addr:value IN ('192.0.2.1', '192.0.2.2') OR domain-name:value = 'x.example']")
    assert not compiled.expressions
    assert {(a.kind, a.value) for a in compiled.atoms} == {
        (Kind.IP, "192.0.2.1"),
        (Kind.IP, "192.0.2.2"),
        (Kind.DOMAIN, "x.example"),
    }


def test_the_column_mapping_is_data_with_extractions() -> None:
    mapping = load_mapping()
    assert any(s.column == "Hashes" and s.extract == "hash_list" for s in mapping)
    assert any(s.column == "dst_endpoint.ip" and s.kind == Kind.IP for s in mapping)


def test_retro_hunt_over_parquet_finds_what_live_matching_finds(tmp_path: Path) -> None:
    frame = events()
    frame.head(8).write_parquet(tmp_path / "a.parquet")
    frame.tail(frame.height - 8).write_parquet(tmp_path / "b.parquet")
    indicators = [
        IndicatorInput(f"indicator--{name}", pattern, name=name, sources="s") for name, pattern in PATTERNS.items()
    ]
    hunted = retro_hunt(indicators, pl.scan_parquet(tmp_path / "*.parquet"))
    assert _pairs(hunted) == EXPECTED
    one = retro_hunt([IndicatorInput("indicator--ip", PATTERNS["ip"])], pl.scan_parquet(tmp_path / "*.parquet"))
    assert _pairs(one) == {("e0", "ip")}


def test_alerts_name_the_indicator_and_its_source_and_sightings_are_recorded(tmp_path: Path) -> None:
    matches = Matcher(index()).match(events())
    alerts = alerts_from_matches(matches)
    by_id = {a.indicator_id: a for a in alerts}
    domain = by_id["indicator--domain"]
    assert "domain" in domain.title and "jpcert-feed" in domain.title
    assert domain.event_uids == ("e3",) and domain.level == "high"
    assert "QueryName = a.b.evil.example" in domain.explanation
    assert domain.as_dict()["entities"] == {"domain": ["a.b.evil.example"]}
    store = IntelStore.open(tmp_path / "intel.db")
    status = record_sightings(store, alerts)
    assert status.success_count == len(alerts) + 1  # and the identity
    sightings = store.find_collection("sightings")
    assert sightings is not None and sightings.default_tlp == Tlp.AMBER
    assert store.count(sightings.id) == len(alerts) + 1
    [seen] = store.sightings_of("indicator--domain")
    assert seen["count"] == 1 and seen["first_seen"].startswith("2024-05-01T00:00:00")
    store.close()


def test_indicators_from_the_store_respect_validity_and_revocation(tmp_path: Path) -> None:
    store = IntelStore.open(tmp_path / "intel.db")
    feeds = store.create_collection("Feeds", alias="feeds")
    base = {
        "type": "indicator",
        "spec_version": "2.1",
        "pattern_type": "stix",
        "created": "2024-01-01T00:00:00Z",
    }
    store.add_objects(
        feeds.id,
        [
            {
                **base,
                "id": "indicator--00000000-0000-4000-8000-000000000001",
                "modified": "2024-01-01T00:00:00Z",
                "pattern": PATTERNS["ip"],
                "valid_from": "2024-01-01T00:00:00Z",
            },
            {
                **base,
                "id": "indicator--00000000-0000-4000-8000-000000000002",
                "modified": "2024-01-01T00:00:00Z",
                "pattern": PATTERNS["domain"],
                "valid_from": "2024-01-01T00:00:00Z",
                "valid_until": "2024-02-01T00:00:00Z",
            },
            {
                **base,
                "id": "indicator--00000000-0000-4000-8000-000000000003",
                "modified": "2024-01-01T00:00:00Z",
                "pattern": PATTERNS["url"],
                "valid_from": "2024-01-01T00:00:00Z",
            },
            {
                **base,
                "id": "indicator--00000000-0000-4000-8000-000000000003",
                "modified": "2024-03-01T00:00:00Z",
                "pattern": PATTERNS["url"],
                "valid_from": "2024-01-01T00:00:00Z",
                "revoked": True,
            },
        ],
        source="feed:test",
    )
    active = store.indicators(at="2024-06-01T00:00:00.000000Z")
    assert [i.pattern for i in active] == [PATTERNS["ip"]]
    assert active[0].sources == ("feed:test",)
    matches = Matcher(IndicatorIndex.build(active)).match(events())
    assert _pairs(matches) == {("e0", "00000000-0000-4000-8000-000000000001")}
    store.close()


def test_the_public_api_is_exactly_what_intel_exports() -> None:
    import mamori.intel

    assert sorted(mamori.intel.__all__) == mamori.intel.__all__
    assert all(hasattr(mamori.intel, name) for name in mamori.intel.__all__)


def test_live_matching_picks_up_new_indicators_and_hunts_them_in_history(tmp_path: Path) -> None:
    from mamori.intel.live import IntelMatching

    history_file = tmp_path / "history.parquet"
    events().write_parquet(history_file)
    store = IntelStore.open(tmp_path / "intel.db")
    feeds = store.create_collection("Feeds", alias="feeds")
    live = IntelMatching(store, history=lambda: pl.scan_parquet(history_file))
    assert live.process(events()) == []

    def indicator(number: int, pattern: str) -> dict[str, str]:
        return {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--00000000-0000-4000-8000-00000000000{number}",
            "created": "2024-01-01T00:00:00Z",
            "modified": "2024-01-01T00:00:00Z",
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z",
        }

    store.add_objects(feeds.id, [indicator(1, PATTERNS["ip"])], source="feed:x")
    alerts = live.process(events().head(0))
    assert [(a.indicator_id, a.event_uids) for a in alerts] == [(indicator(1, "")["id"], ("e0",))]
    alerts = live.process(events().head(1))
    assert [a.event_uids for a in alerts] == [("e0",)]
    assert live.refresh() == []
    sightings = store.require_collection("sightings")
    assert store.count(sightings.id) == 2 + 1
    store.close()
