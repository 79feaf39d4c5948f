"""Rule and indicator-match alerts add entity risk to their user, host and source address, and the
risk contributions say which kind of alert each was, in English and Japanese."""

from __future__ import annotations

from datetime import UTC, datetime

from mamori.service.anomaly_worker import rule_contribution
from mamori.store.records import Alert


def _alert(rule_id: str, title: str, ip: str | None = "203.0.113.9") -> Alert:
    now = datetime(2026, 3, 24, 5, tzinfo=UTC)
    return Alert(rule_id=rule_id, rule_title=title, level="high", author="x", tags=[], first_seen=now,
                 last_seen=now, created_at=now, updated_at=now, user="taro", host="ws07", ip=ip,
                 event_uids=["u1"], status="new", dedup_key="k", count=3)


def test_a_rule_alert_adds_risk_to_its_user_host_and_source_address() -> None:
    parts = rule_contribution(_alert("sigma-123", "Mimikatz use"))
    assert [(a.entity_type, a.entity) for a in parts] == [("user", "taro"), ("host", "ws07"),
                                                          ("source_ip", "203.0.113.9")]
    assert all(a.score == 40.0 and a.detector == "rule sigma-123" for a in parts)
    assert parts[0].explanation.en == "Sigma rule 'Mimikatz use' (high) matched 3 event(s)"
    assert "Sigmaルール「Mimikatz use」" in parts[0].explanation.ja


def test_an_alert_without_a_source_address_adds_risk_to_user_and_host_only() -> None:
    parts = rule_contribution(_alert("sigma-123", "Mimikatz use", ip=None))
    assert [a.entity_type for a in parts] == ["user", "host"]


def test_an_indicator_match_is_described_as_one_not_as_a_sigma_rule() -> None:
    parts = rule_contribution(_alert("intel:ind-42", "Known C2 address 198.51.100.7"))
    assert len(parts) == 3
    first = parts[0]
    assert first.detector == "indicator match intel:ind-42"
    assert first.explanation.en == (
        "Indicator match 'Known C2 address 198.51.100.7' (indicator ind-42, high) in 3 event(s)")
    assert "Sigma" not in first.explanation.en and "Sigma" not in first.explanation.ja
    assert "脅威インテリジェンスの指標「Known C2 address 198.51.100.7」（指標 ind-42、high）" in first.explanation.ja
