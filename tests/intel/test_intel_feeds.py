"""Feeds in: TAXII polling (against our own server), MISP feeds, CSV and text lists, STIX bundles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mamori.intel.errors import IntelError
from mamori.intel.feeds.config import FeedConfig, load_feeds
from mamori.intel.feeds.iocs import guess_type, indicator_for
from mamori.intel.feeds.runner import due_feeds, run_feed
from mamori.intel.principal import Principal
from mamori.intel.query import ObjectQuery
from mamori.intel.serve import BackgroundServer
from mamori.intel.store import IntelStore
from mamori.intel.taxii_server import create_taxii_app
from mamori.intel.tlp import Tlp

DATA = Path(__file__).parent / "data"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IntelStore]:
    intel = IntelStore.open(tmp_path / "intel.db")
    yield intel
    intel.close()


def _patterns(store: IntelStore) -> dict[str, tuple[str, ...]]:
    return {i.pattern: i.sources for i in store.indicators(include_inactive=True)}


def test_the_jpcert_phishing_url_layout_is_read_with_configured_columns(store: IntelStore) -> None:
    feed = FeedConfig(
        name="jpcert-phishurl",
        kind="csv",
        location=str(DATA / "jpcert_phishurl.csv"),
        value_type="url",
        columns={"value": "URL", "date": "date", "description": "description"},
        confidence=70,
        tlp=Tlp.CLEAR,
    )
    run = run_feed(store, feed)
    assert (run.stored, run.skipped, run.error) == (2, 1, "")
    patterns = _patterns(store)
    assert set(patterns) == {
        "[url:value = 'https://login-example-bank.example.com/signin']",
        "[url:value = 'https://secure-card.example.net/verify']",
    }
    first = store.indicators(include_inactive=True)[0]
    assert first.confidence == 70 and first.tlp == Tlp.CLEAR and first.valid_from.startswith("2024-05-01")


def test_a_text_list_guesses_each_kind_and_skips_what_is_not_an_ioc(store: IntelStore) -> None:
    run = run_feed(store, FeedConfig(name="txt", kind="text", location=str(DATA / "iocs.txt")))
    assert (run.stored, run.skipped) == (5, 1)
    assert set(_patterns(store)) == {
        "[ipv4-addr:value = '203.0.113.77']",
        "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
        "[domain-name:value = 'evil-c2.example']",
        "[file:hashes.'MD5' = 'd41d8cd98f00b204e9800998ecf8427e']",
        "[email-addr:value = 'attacker@phish.example']",
    }


def test_the_same_ioc_from_two_feeds_is_one_indicator_with_both_sources(store: IntelStore) -> None:
    run_feed(store, FeedConfig(name="txt", kind="text", location=str(DATA / "iocs.txt")))
    run_feed(store, FeedConfig(name="misp", kind="misp", location=str(DATA / "misp")))
    patterns = _patterns(store)
    assert patterns["[ipv4-addr:value = '203.0.113.77']"] == ("feed:misp", "feed:txt")
    again = run_feed(store, FeedConfig(name="txt", kind="text", location=str(DATA / "iocs.txt")))
    assert again.stored == 0


def test_a_misp_feed_reads_to_ids_attributes_with_event_tlp_and_only_changed_events_again(
    store: IntelStore,
) -> None:
    feed = FeedConfig(name="misp", kind="misp", location=str(DATA / "misp"), confidence=60)
    first = run_feed(store, feed)
    assert (first.stored, first.skipped) == (6, 1)
    by_pattern = {i.pattern: i for i in store.indicators(include_inactive=True)}
    assert by_pattern["[domain-name:value = 'c2.intrusion.example']"].tlp == Tlp.AMBER
    assert by_pattern["[url:value = 'https://phish.example/login']"].tlp == Tlp.GREEN
    assert "[ipv4-addr:value = '203.0.113.99']" in by_pattern
    assert "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']" in by_pattern
    second = run_feed(store, feed)
    assert (second.fetched, second.stored) == (0, 0)


def test_a_stix_bundle_file_is_imported_whole(store: IntelStore) -> None:
    run = run_feed(store, FeedConfig(name="bundle", kind="stix", location=str(DATA / "bundle.json"), confidence=40))
    assert run.stored == 2
    indicator = store.indicators(include_inactive=True)[0]
    assert indicator.confidence == 90  # the object's own confidence wins over the feed default


def test_a_taxii_collection_is_polled_incrementally(store: IntelStore, tmp_path: Path) -> None:
    partner = IntelStore.open(tmp_path / "partner.db", max_page_size=2)
    shared = partner.create_collection("Shared", alias="shared")
    bundle_feed = FeedConfig(name="seed", kind="stix", location=str(DATA / "bundle.json"))
    run_feed(partner, bundle_feed)
    feeds_collection = partner.require_collection("feeds")
    objects = partner.objects(feeds_collection.id, ObjectQuery())
    partner.add_objects(shared.id, [o.as_dict() for o in objects.items])
    tokens = {"t": Principal("mamori", frozenset({"shared"}), partner=True)}
    with BackgroundServer(create_taxii_app(tmp_path / "partner.db", tokens, store=partner)) as server:
        feed = FeedConfig(
            name="partner", kind="taxii", location=f"{server.url}/taxii2/api", collection=shared.id, token="t"
        )
        first = run_feed(store, feed)
        assert (first.fetched, first.stored, first.error) == (2, 2, "")
        assert run_feed(store, feed).fetched == 0
        newer = {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "created": "2024-06-01T00:00:00Z",
            "modified": "2024-06-01T00:00:00Z",
            "pattern_type": "stix",
            "pattern": "[domain-name:value = 'new.example']",
            "valid_from": "2024-06-01T00:00:00Z",
        }
        partner.add_objects(shared.id, [newer])
        third = run_feed(store, feed)
        assert (third.fetched, third.stored) == (1, 1)
        bad = run_feed(
            store,
            FeedConfig(
                name="bad",
                kind="taxii",
                location=f"{server.url}/taxii2/api",
                collection=shared.id,
                token="wrong",
            ),
        )
        assert "401" in bad.error and store.feed_state("bad").last_error
    partner.close()


def test_feed_files_are_validated_with_the_feed_named(tmp_path: Path) -> None:
    good = tmp_path / "feeds.yaml"
    good.write_text(
        "feeds:\n  - {name: jpcert, kind: csv, location: x.csv, tlp: clear, confidence: 80, interval: 600}\n",
        encoding="utf-8",
    )
    [feed] = load_feeds(good)
    assert (feed.tlp, feed.confidence, feed.interval) == (Tlp.CLEAR, 80, 600)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: x, kind: ftp, location: y}\n", encoding="utf-8")
    with pytest.raises(IntelError, match=r"bad.yaml: feed 1 \(x\)"):
        load_feeds(bad)


def test_feeds_are_due_by_their_interval(store: IntelStore) -> None:
    feed = FeedConfig(name="txt", kind="text", location=str(DATA / "iocs.txt"), interval=3600)
    assert due_feeds(store, [feed]) == [feed]
    run_feed(store, feed)
    assert due_feeds(store, [feed]) == []


def test_ioc_values_are_refanged_and_typed() -> None:
    assert guess_type("hxxp://evil[.]example/a".replace("hxxp", "http").replace("[.]", ".")) == "url"
    assert guess_type("2001:db8::1") == "ip"
    made = indicator_for("evil[.]example", None, source="s", confidence=50, tlp=Tlp.GREEN)
    assert made is not None and made["pattern"] == "[domain-name:value = 'evil.example']"
    assert indicator_for("just words", None, source="s", confidence=50, tlp=Tlp.GREEN) is None


def test_the_poll_loop_runs_due_feeds_until_stopped(store: IntelStore) -> None:
    import threading

    from mamori.intel.feeds.runner import poll

    feed = FeedConfig(name="txt", kind="text", location=str(DATA / "iocs.txt"), interval=3600)
    stop = threading.Event()
    runs = []

    def on_run(result: object) -> None:
        runs.append(result)
        stop.set()

    worker = threading.Thread(target=poll, args=(store, [feed], stop), kwargs={"on_run": on_run, "tick": 0.01})
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive() and len(runs) == 1
    assert store.feed_state("txt").last_count == 5
