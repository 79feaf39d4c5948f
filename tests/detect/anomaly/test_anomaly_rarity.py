"""Rarity: a value rare for the entity and among its peers is reported with its counts and shares, a
value common among the peers or new to the entity is not, and analysts' verdicts and the counts the
live stream adds survive a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mamori.detect.anomaly import RarityDetector, UebaEngine
from mamori.detect.anomaly.rarity import (
    ORGANISATION,
    RARE_LOGON_TYPE,
    RARE_PROCESS,
    RARE_PROCESS_PAIR,
    RarityKind,
)

T0 = datetime(2026, 4, 1, tzinfo=UTC)
DAYS = 20
HOSTS = [f"ws{i:02d}" for i in range(1, 11)]
PEERS = {h: "office" for h in HOSTS}
EXPLORER = r"C:\Windows\explorer.exe"
CHROME = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
EXCEL = r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE"
TEAMS = r"C:\Users\Public\Teams\current\Teams.exe"
CMD = r"C:\Windows\System32\cmd.exe"
WINWORD = r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE"
POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"


def _proc(host: str, image: str, t: datetime, parent: str = EXPLORER) -> dict[str, object]:
    return {"_time": t, "_host": host, "EventID": "1", "Image": image, "ParentImage": parent}


def _frame(rows: list[dict[str, object]], tag: str) -> pl.DataFrame:
    frame = pl.DataFrame(rows)
    return frame.with_columns(
        pl.col("_time").cast(pl.Datetime("ns", "UTC")), pl.Series("_uid", [f"{tag}{i}" for i in range(len(frame))])
    )


def _baseline(extra: list[dict[str, object]] | None = None) -> pl.DataFrame:
    """Twenty days of ten office workstations: chrome, Excel, Teams and cmd started by explorer on every
    one (Teams once only on ws02); ws01 ran PowerShell once and Word started cmd.exe there once."""
    rows = []
    for h, host in enumerate(HOSTS):
        for i in range(200):
            t = T0 + timedelta(days=i % DAYS, hours=9, minutes=h + i % 50)
            rows.append(_proc(host, CHROME, t))
            if i < 50:
                rows += [_proc(host, EXCEL, t + timedelta(seconds=1)), _proc(host, CMD, t + timedelta(seconds=2))]
            if i < 20 and host != "ws02":  # Teams is common on every workstation but ws02
                rows.append(_proc(host, TEAMS, t + timedelta(seconds=3)))
    rows += [
        _proc("ws01", POWERSHELL, T0 + timedelta(days=3, hours=11)),
        _proc("ws01", CMD, T0 + timedelta(days=4, hours=11), parent=WINWORD),
        _proc("ws02", TEAMS, T0 + timedelta(days=5, hours=10)),
        *(extra or []),
    ]
    return _frame(rows, "b")


def _day(rows: list[tuple[str, str, str]], tag: str = "n", day: int = DAYS) -> pl.DataFrame:
    """A later batch: (host, image, parent) process starts on day ``day``, after ordinary browsing."""
    t = T0 + timedelta(days=day, hours=10)
    ordinary = [_proc(h, CHROME, t + timedelta(minutes=i)) for i, h in enumerate(HOSTS)]
    found = [_proc(h, image, t + timedelta(hours=1, minutes=i), parent) for i, (h, image, parent) in enumerate(rows)]
    return _frame(ordinary + found, tag)


def _fitted(kind: RarityKind = RARE_PROCESS, **thresholds: Any) -> RarityDetector:
    detector = RarityDetector(kind, **thresholds)
    detector.fit(_baseline(), PEERS)
    return detector


def test_a_process_rare_on_the_host_and_among_its_peers_is_reported_with_counts_and_shares() -> None:
    found = _fitted().score(_day([("ws01", POWERSHELL, EXPLORER), ("ws01", POWERSHELL, EXPLORER)]))
    assert [(a.detector, a.entity, dict(a.detail)["value"]) for a in found] == [
        ("rare_process", "ws01", POWERSHELL.lower())
    ]
    rare = found[0]
    assert rare.entity_type == "host" and rare.peer_group == "office"
    assert (rare.observed, rare.typical) == (1.0, 200.0)  # once before; the host's usual process 200 times
    assert rare.window == "2026-04-01..2026-04-20 (19 days)"
    assert len(rare.event_uids) == 2 and all(u.startswith("n") for u in rare.event_uids)
    assert rare.time == T0 + timedelta(days=DAYS, hours=11)
    assert "(2 time(s) now) is rare: 1 time(s) in the last 19 days on this host, 0.31% of its 322 process starts" in (
        rare.explanation.en
    )
    assert "0% of the 2,861 process starts of its peer group office (0 of 9 other hosts showed it)" in (
        rare.explanation.en
    )
    assert "はまれ" in rare.explanation.ja and "過去 19 日間に 1 回" in rare.explanation.ja
    assert "ピアグループ office" in rare.explanation.ja and "他の 9 台中 0 台" in rare.explanation.ja
    assert 20 <= rare.score <= 80


def test_a_process_rare_on_the_host_but_common_among_its_peers_stays_quiet() -> None:
    detector = _fitted()
    # Teams ran once on ws02 in twenty days, but every other workstation of the group runs it daily
    assert detector.score(_day([("ws02", TEAMS, EXPLORER)])) == []


def test_a_process_new_to_the_host_is_left_to_first_seen_unless_asked_for() -> None:
    batch = _day([("ws03", r"C:\Temp\m.exe", EXPLORER)])
    assert _fitted().score(batch) == []
    found = _fitted(min_entity_count=0).score(batch)
    assert [(a.entity, a.observed) for a in found] == [("ws03", 0.0)]


def test_the_live_stream_is_counted_so_a_value_stops_being_rare_and_a_batch_seen_again_is_not_judged_twice() -> None:
    detector = _fitted()
    first = _day([("ws01", POWERSHELL, EXPLORER)], tag="a")
    assert len(detector.score(first)) == 1
    assert detector.score(first) == []  # the service scores the previous round's events again as context
    second = _day([("ws01", POWERSHELL, EXPLORER)], tag="b", day=DAYS + 1)
    assert [a.observed for a in detector.score(second)] == [2.0]  # twice before now: still rare
    third = _day([("ws01", POWERSHELL, EXPLORER)], tag="c", day=DAYS + 2)
    assert detector.score(third) == []  # three times in the window: no longer rare


def test_an_unusual_parent_of_an_ordinary_process_is_a_rare_pair_but_a_rare_process_is_reported_once() -> None:
    detector = _fitted(RARE_PROCESS_PAIR)
    found = detector.score(_day([("ws01", CMD, WINWORD), ("ws01", POWERSHELL, EXPLORER)]))
    assert [dict(a.detail)["value"] for a in found] == [f"{WINWORD} → {CMD}".lower()]
    assert "parent→child process pair" in found[0].explanation.en
    assert "親子プロセスの組" in found[0].explanation.ja


def test_a_benign_verdict_allows_that_value_on_that_entity_only() -> None:
    baseline = _baseline(extra=[_proc("ws05", POWERSHELL, T0 + timedelta(days=6, hours=11))])
    detector = RarityDetector(RARE_PROCESS)
    detector.fit(baseline, PEERS)
    found = detector.score(_day([("ws01", POWERSHELL, EXPLORER), ("ws05", POWERSHELL, EXPLORER)], tag="a"))
    assert [a.entity for a in found] == ["ws01", "ws05"]
    detector.learn_benign(found[0])
    later = _day([("ws01", POWERSHELL, EXPLORER), ("ws05", POWERSHELL, EXPLORER)], tag="b", day=DAYS + 1)
    assert [(a.entity, a.observed) for a in detector.score(later)] == [("ws05", 2.0)]
    # through the engine, as an analyst's verdict on the alert arrives
    engine = UebaEngine([RarityDetector(RARE_PROCESS)])
    engine.fit(baseline, PEERS)
    engine.mark_benign(found[0])
    assert [a.entity for a in engine.score(later)] == ["ws05"]


def test_counts_verdicts_and_thresholds_survive_a_save_and_load(tmp_path: Path) -> None:
    engine = UebaEngine([_fitted(max_peer_share=0.002)])
    assert len(engine.score(_day([("ws01", POWERSHELL, EXPLORER)], tag="a"))) == 1
    engine.save(tmp_path / "counted")
    restored = UebaEngine.load(tmp_path / "counted").detectors[0]
    assert isinstance(restored, RarityDetector) and restored.max_peer_share == 0.002
    # the run counted live before the save is kept: twice before now, then three times
    assert [a.observed for a in restored.score(_day([("ws01", POWERSHELL, EXPLORER)], tag="b", day=DAYS + 1))] == [2]
    assert restored.score(_day([("ws01", POWERSHELL, EXPLORER)], tag="c", day=DAYS + 2)) == []

    verdict = UebaEngine([_fitted()])
    verdict.mark_benign(verdict.score(_day([("ws01", POWERSHELL, EXPLORER)], tag="a"))[0])
    verdict.save(tmp_path / "verdict")
    allowed = UebaEngine.load(tmp_path / "verdict").detectors[0]  # the detector's own allow-list, not the engine's
    assert allowed.score(_day([("ws01", POWERSHELL, EXPLORER)], tag="b", day=DAYS + 1)) == []


def test_a_user_logon_type_rare_for_the_user_and_the_peers_is_reported() -> None:
    def logon(user: str, kind: str, t: datetime) -> dict[str, object]:
        return {"_time": t, "_host": "srv01", "EventID": "4624", "TargetUserName": user, "LogonType": kind,
                "IpAddress": "10.0.0.7"}

    users = [f"user{i}" for i in range(10)]
    rows = [logon(u, "3" if i % 3 else "2", T0 + timedelta(days=i % DAYS, hours=9, minutes=n))
            for n, u in enumerate(users) for i in range(200)]
    rows += [logon("user1", "10", T0 + timedelta(days=2, hours=8)), logon("HOST1$", "10", T0 + timedelta(days=2))]
    detector = RarityDetector(RARE_LOGON_TYPE)
    detector.fit(_frame(rows, "b"))  # no peer groups given: the users are compared with all users
    batch = _frame([logon("user1", "10", T0 + timedelta(days=DAYS, hours=3)),
                    logon("user2", "3", T0 + timedelta(days=DAYS, hours=9)),
                    logon("HOST1$", "10", T0 + timedelta(days=DAYS, hours=3))], "n")
    found = detector.score(batch)
    assert [(a.entity, dict(a.detail)["value"], a.peer_group) for a in found] == [("user1", "10", "all users")]
    assert "logon type 10 on user user1" in found[0].explanation.en
    assert "ユーザー user1 でログオン種別 10 はまれ" in found[0].explanation.ja


def test_a_peer_group_too_small_to_judge_by_is_replaced_by_the_organisation() -> None:
    detector = RarityDetector(RARE_PROCESS, min_peer_events=1_000)
    detector.fit(_baseline(), {**PEERS, "ws01": "pair", "ws02": "pair"})  # ws02's 301 process starts are too few
    found = detector.score(_day([("ws01", POWERSHELL, EXPLORER)]))
    assert [a.peer_group for a in found] == [ORGANISATION]


@pytest.mark.parametrize(("share", "reported"), [(0.0001, []), (0.001, ["ws01"]), (0.1, ["ws01", "ws02"])])
def test_the_peer_share_threshold_decides(share: float, reported: list[str]) -> None:
    # PowerShell on ws01: its peers never ran it, (0 + 0.5) / (2,861 + 1) = 0.017% of their process starts;
    # Teams on ws02: its peers ran it 180 times in 2,882 process starts, 6.3%
    batch = _day([("ws01", POWERSHELL, EXPLORER), ("ws02", TEAMS, EXPLORER)])
    assert [a.entity for a in _fitted(max_peer_share=share).score(batch)] == reported
