"""Behaviour of the individual detectors on small hand-made batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from mamori.detect.anomaly import (
    Anomaly,
    BeaconingDetector,
    CallSetModel,
    DomainNameModel,
    Explanation,
    FirstSeenDetector,
    NgramSequenceModel,
    RiskScorer,
    SprayingDetector,
    TabularKnnModel,
    TraceAnomalyModel,
)
from mamori.detect.anomaly.fields import person_entity
from mamori.detect.anomaly.first_seen import USER_HOST
from mamori.detect.anomaly.metrics import detection_at_false_alarm, roc_auc
from mamori.detect.anomaly.peers import behaviour_peers

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def _events(rows: list[dict[str, object]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows)
    return frame.with_columns(
        pl.col("_time").cast(pl.Datetime("ns", "UTC")),
        pl.Series("_uid", [f"e{i}" for i in range(len(frame))]),
    )


def _conn(host: str, dst: str, t: datetime) -> dict[str, object]:
    return {"_time": t, "_host": host, "dst_endpoint.ip": dst, "dst_endpoint.port": "443"}


def test_roc_auc_matches_scikit_learn_including_ties() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(500) < 0.3
    s = np.round(rng.normal(size=500) + y, 1)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert detection_at_false_alarm([0, 0, 0, 0, 1, 1], [1, 2, 3, 4, 5, 0], 0.25) == 0.5


def test_beaconing_flags_a_steady_rare_destination_but_not_a_popular_periodic_one() -> None:
    base = [_conn(f"ws{h}", "10.0.0.5", T0 + timedelta(hours=i, seconds=h)) for h in range(10) for i in range(2)]
    detector = BeaconingDetector()
    detector.fit(_events(base))
    batch = [_conn("ws1", "198.51.100.7", T0 + timedelta(days=1, seconds=60 * i + (i % 2))) for i in range(31)]
    batch += [_conn("ws2", "10.0.0.5", T0 + timedelta(days=1, hours=i)) for i in range(20)]
    batch += [
        _conn("ws3", "93.184.216.1", T0 + timedelta(days=1, seconds=int(s)))
        for s in np.cumsum(np.random.default_rng(0).exponential(60, 30))
    ]
    found = detector.score(_events(batch))
    assert [(a.entity, dict(a.detail)["destination"]) for a in found] == [("ws1", "198.51.100.7:443")]
    assert "every 60 s" in found[0].explanation.en
    assert "秒ごと" in found[0].explanation.ja


def _failure(src: str, user: str, t: datetime) -> dict[str, object]:
    return {"_time": t, "_host": "dc01", "EventID": "4625", "TargetUserName": user, "IpAddress": src}


def test_spraying_needs_many_users_with_few_attempts_each() -> None:
    detector = SprayingDetector()
    detector.fit(_events([_failure("10.0.0.9", "alice", T0)]))
    spray = [_failure("10.6.6.6", f"user{i}", T0 + timedelta(days=1, seconds=10 * i)) for i in range(25)]
    brute = [_failure("10.7.7.7", "bob", T0 + timedelta(days=1, seconds=5 * i)) for i in range(200)]
    found = detector.score(_events(spray + brute))
    assert [a.entity for a in found] == ["10.6.6.6"]
    assert found[0].observed == 25
    detector.learn_benign(found[0])
    assert detector.score(_events(spray)) == []


def test_risk_decays_by_half_each_half_life_and_raises_once() -> None:
    scorer = RiskScorer(threshold=100, half_life=timedelta(hours=1))

    def anomaly(score: float, at: datetime) -> Anomaly:
        return Anomaly("d", "user", "taro", at, score, 1, 0, "", Explanation("x", "x"))

    assert scorer.add([anomaly(60, T0)]) == []
    assert scorer.risk("user", "taro", T0 + timedelta(hours=1)) == pytest.approx(30)
    raised = scorer.add([anomaly(80, T0 + timedelta(hours=1))])
    assert len(raised) == 1 and raised[0].risk == pytest.approx(110)
    assert scorer.add([anomaly(10, T0 + timedelta(hours=1, minutes=5))]) == []


def test_sequence_model_scores_unseen_call_patterns_higher_and_survives_save(tmp_path: Path) -> None:
    normal = [np.array([3, 4, 5, 6] * 20) for _ in range(5)]
    model = NgramSequenceModel(order=3).fit(normal)
    odd = np.array([3, 4, 5, 6] * 5 + [11, 3, 11, 9] * 5)
    scores = model.score([normal[0], odd])
    assert scores[1] > scores[0] * 5
    model.save(tmp_path / "m.npz")
    assert np.allclose(NgramSequenceModel.load(tmp_path / "m.npz").score([odd]), scores[1:])


def test_call_set_model_measures_repertoire_novelty_and_leaves_each_trace_out() -> None:
    normal = [np.array([3, 4, 5, 6] * 10), np.array([3, 4, 5, 6] * 12), np.array([1, 2, 3, 4] * 10)]
    model = CallSetModel().fit(normal)
    scores = model.score([np.array([6, 5, 4, 3] * 3), np.array([3, 4] * 20), np.array([3, 4, 5, 99] * 5)])
    assert scores[0] == 0.0  # same calls as a normal trace, whatever their order
    assert scores[1] == pytest.approx(0.5)  # half of the nearest normal repertoire
    assert scores[2] == pytest.approx(1 - 3 / 5)  # one call no normal trace makes
    # {3,4,5,6} is shared by two training traces (0 each); {1,2,3,4} alone is 1 - 2/6 from it
    assert sorted(model.held_out_scores().tolist()) == pytest.approx([0.0, 0.0, 1 - 2 / 6])


def test_trace_model_adds_order_and_repertoire_novelty_and_survives_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    programs = [np.array([3, 4, 5, 6, 7]), np.array([1, 2, 3, 4, 8, 9]), np.array([11, 12, 13, 3, 4])]
    normal = [np.tile(programs[i % 3], int(rng.integers(5, 15))) for i in range(30)]
    model = TraceAnomalyModel(order=3, folds=3).fit(normal)
    known = np.tile(programs[1], 8)
    reordered = np.tile(programs[1][::-1], 8)  # familiar calls, unfamiliar order
    narrow = np.array([3, 4] * 20)  # familiar pairs, a repertoire no normal program has
    scores = model.score([known, reordered, narrow])
    assert scores[1] > scores[0] and scores[2] > scores[0]
    surprise, distance = model.parts([known, reordered, narrow])
    assert distance[1] == 0.0 < distance[2] and surprise[1] > surprise[2]
    model.save(tmp_path / "trace.npz")
    assert np.allclose(TraceAnomalyModel.load(tmp_path / "trace.npz").score([known, reordered, narrow]), scores)


def test_tabular_model_scores_far_rows_higher_and_survives_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    normal = pl.DataFrame({"bytes": rng.integers(100, 200, 300), "proto": rng.choice(["tcp", "udp"], 300)})
    model = TabularKnnModel(["bytes"], ["proto"], k=5).fit(normal)
    test = pl.DataFrame({"bytes": [150, 10_000_000, 150], "proto": ["tcp", "tcp", "icmp"]})
    scores = model.score(test)
    assert scores[1] > scores[0] and scores[2] > scores[0]
    model.save(tmp_path / "kdd")
    assert np.allclose(TabularKnnModel.load(tmp_path / "kdd").score(test), scores)


def test_domain_model_finds_generated_names_among_the_organisations_usual_ones(tmp_path: Path) -> None:
    words = [
        "google",
        "microsoft",
        "office365",
        "yahoo",
        "amazon",
        "windowsupdate",
        "github",
        "slack",
        "cloudflare",
        "akamai",
        "salesforce",
        "rakuten",
        "docomo",
        "softbank",
        "nikkei",
        "mercari",
        "toyota",
        "hitachi",
        "fujitsu",
        "panasonic",
        "linkedin",
        "youtube",
        "wikipedia",
        "dropbox",
    ]
    model = DomainNameModel().fit([f"www.{w}.com" for w in words] + [f"mail.{w}.co.jp" for w in words])
    found = model.suspicious(pl.Series(["www.google.com", "news.yahoo.co.jp", "xq7z0kvw3jpl9d.com"]))
    assert found["name"].to_list() == ["xq7z0kvw3jpl9d.com"]
    model.save(tmp_path / "dns")
    assert DomainNameModel.load(tmp_path / "dns").suspicious(pl.Series(["xq7z0kvw3jpl9d.com"])).height == 1


NOT_PEOPLE = ["WS01$", "CORP\\WS01$", "SYSTEM", " system ", "NT AUTHORITY\\SYSTEM", "LOCAL SERVICE",
              "nt authority\\network service", "ANONYMOUS LOGON", "IUSR", "DWM-1", "UMFD-0"]


@pytest.mark.parametrize(
    ("name", "person"),
    [*((n, False) for n in NOT_PEOPLE), ("alice", True), ("CORP\\alice", True), ("systemadmin", True), (None, False)],
)
def test_machine_accounts_and_windows_built_in_principals_are_not_people(name: str | None, person: bool) -> None:
    frame = pl.DataFrame({"entity": [name]}, schema={"entity": pl.Utf8})
    assert frame.select(person_entity()).item() is person


def _logon(user: str, host: str, t: datetime) -> dict[str, object]:
    return {"_time": t, "_host": host, "EventID": "4624", "TargetUserName": user}


def test_user_detectors_baseline_people_only() -> None:
    """First-seen logon targets and behaviour peer groups leave machine accounts and SYSTEM out."""
    home = {"alice": "srv01", "bob": "srv01", "carol": "srv02", "dave": "srv02", "WS01$": "srv01", "SYSTEM": "srv01"}
    baseline = _events([_logon(u, h, T0 + timedelta(days=d, minutes=i))
                        for d in range(10) for i, (u, h) in enumerate(home.items())])
    peers = behaviour_peers(baseline)
    assert peers["alice"] == peers["bob"] != peers["carol"] == peers["dave"]
    assert "WS01$" not in peers and "SYSTEM" not in peers
    detector = FirstSeenDetector(USER_HOST)
    detector.fit(baseline, peers)
    later = T0 + timedelta(days=11)
    found = detector.score(_events([_logon(u, "srv09", later + timedelta(minutes=i)) for i, u in enumerate(home)]))
    assert sorted(a.entity for a in found) == ["alice", "bob", "carol", "dave"]


def test_public_api_is_exactly_what_the_package_exports() -> None:
    import mamori.detect.anomaly as anomaly

    assert sorted(anomaly.__all__) == anomaly.__all__
    assert all(hasattr(anomaly, name) for name in anomaly.__all__)
    public = {n for n, v in vars(anomaly).items() if not n.startswith("_") and isinstance(v, type)}
    assert public <= set(anomaly.__all__)
