"""The incident report in Japanese words the cases room's sentences (severity basis, trail reasons) in
Japanese with the report's own level names, and keeps the English ones for English readers."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from mamori.report import build, render_html

ENGLISH_PHRASES = ("highest alert level", "already the highest", "ATT&CK tactics (", "opened by", "alert(s)")


def test_japanese_report_shows_the_severity_basis_and_trail_reasons_in_japanese(
        report_db: tuple[sessionmaker[Session], int]) -> None:
    sessions, incident_id = report_db
    with sessions() as session:
        data = build(session, None, incident_id, "ja")
    html = render_html(data, "ja")
    # the report calls critical 緊急; the basis uses the report's own word
    assert "最高アラートレベル「緊急」（ATT&amp;CK 戦術が 3 つ以上（3 つ）ですが、すでに最高の重大度）" in html
    assert "理由：analyst-user が起票" in html
    for phrase in ENGLISH_PHRASES:
        assert phrase not in html, phrase


def test_english_report_keeps_the_english_severity_basis(report_db: tuple[sessionmaker[Session], int]) -> None:
    sessions, incident_id = report_db
    with sessions() as session:
        data = build(session, None, incident_id, "en")
    html = render_html(data, "en")
    assert "highest alert level Critical; 3 ATT&amp;CK tactics (≥ 3), already the highest" in html
    assert "opened by analyst-user" in html
