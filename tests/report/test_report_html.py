"""The HTML report: labels in the reader's language, dates in the reader's zone, user text kept as text,
one self-contained page, and the APPI prompt."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pytest
from report_fixtures import HOSTILE_NOTE, sample_report

from mamori.errors import MamoriError
from mamori.report import render_html
from mamori.report.attack_map import technique_name
from mamori.report.locale import catalogue
from mamori.report.model import EntityRow


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def test_japanese_report_has_japanese_labels_jst_dates_and_tactic_names() -> None:
    html = render_html(sample_report(), "ja")
    for label in ("インシデント報告書", "エグゼクティブサマリー", "タイムライン", "関連エンティティ",
                  "ATT&amp;CK マッピング", "実施した対応", "証拠ファイル", "重大度", "緊急", "調査中",
                  "ユーザーアカウント"):
        assert label in html, label
    assert "2026年11月29日 14:05 JST" in html
    assert "時刻は JST で表示しています" in html
    for tactic in ("実行", "認証情報アクセス", "横展開"):
        assert tactic in html
    assert "ステータスを「新規」から「調査中」に変更" in html
    assert "Executive summary" not in html and "Timeline" not in html
    assert '<html lang="ja">' in html


def test_english_report_has_english_labels_and_utc_dates() -> None:
    html = render_html(sample_report(), "en")
    for label in ("Incident report", "Executive summary", "Timeline", "Entities", "ATT&amp;CK mapping",
                  "Actions taken", "Evidence", "Critical", "Investigating", "Credential Access", "Lateral Movement"):
        assert label in html, label
    assert "29 Nov 2026 05:05 UTC" in html
    assert "Status changed from New to Investigating" in html
    assert "エグゼクティブサマリー" not in html
    if technique_name("T1003.001"):  # the ATT&CK data package is installed
        assert "OS Credential Dumping: LSASS Memory" in html
    assert "T1003.001" in html and "TA0006" in html


def test_time_zone_can_be_chosen_by_the_reader() -> None:
    data = sample_report()
    assert "2026年11月29日 05:05 UTC" in render_html(data, "ja", "UTC")
    assert "29 Nov 2026 14:05 JST" in render_html(data, "en", "Asia/Tokyo")
    assert "2026年11月28日 21:05 PST" in render_html(data, "ja", "America/Los_Angeles")


def test_note_with_markup_stays_text() -> None:
    html = render_html(sample_report(), "ja")
    elements = parsed(html)
    assert "script" not in elements.tags
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; 続報待ち" in html
    assert HOSTILE_NOTE in "".join(elements.text)


def test_page_is_self_contained_and_names_the_cjk_fonts_first_for_japanese() -> None:
    html = render_html(sample_report(), "ja")
    elements = parsed(html)
    assert not {"link", "script", "img", "iframe"} & set(elements.tags)
    assert not [value for name, value in elements.attributes if name in {"src", "href"}]
    rule = re.search(r'html\[lang="ja"\][^{]*\{\s*font-family:\s*([^;]+);', html)
    assert rule is not None
    assert rule.group(1).split(",")[0].strip() == '"Noto Sans CJK JP"'
    assert '"Noto Serif CJK JP"' in rule.group(1)


def test_both_catalogues_hold_the_same_keys() -> None:
    assert set(catalogue("ja")) == set(catalogue("en"))
    placeholders = re.compile(r"\{(\w+)\}")
    for key, text in catalogue("en").items():
        assert set(placeholders.findall(text)) == set(placeholders.findall(catalogue("ja")[key])), key


def test_unknown_language_or_zone_is_an_error_naming_the_choices() -> None:
    with pytest.raises(MamoriError, match="ja, en"):
        render_html(sample_report(), "fr")
    with pytest.raises(MamoriError, match="time zone"):
        render_html(sample_report(), "ja", "Mars/Olympus")


def test_appi_prompt_names_personal_entity_kinds() -> None:
    html = render_html(sample_report(), "ja")
    assert "個人情報保護委員会への報告要否の検討" in html
    assert "ユーザーアカウント、IP アドレス" in html
    assert "法的助言ではありません" in html
    hosts_only = dataclasses.replace(sample_report(), entities=(EntityRow("host", "WS01", 2),))
    html = render_html(hosts_only, "ja")
    assert "個人情報保護委員会への報告要否の検討" not in html
    assert "通常個人を識別するエンティティ" in html


def test_executive_summary_says_what_where_how_and_state() -> None:
    html = render_html(sample_report(), "en")
    summary = html.split('id="summary"')[1].split("</section>")[0]
    assert "3 alert(s)" in summary and "LSASS Memory Dump via Procdump" in summary
    assert "Hosts involved: WS01, FS02." in summary
    assert "3 ATT&amp;CK tactic(s): Execution, Credential Access, Lateral Movement" in summary
    assert "status is “Investigating” and its severity “Critical”; it is assigned to sato" in summary


def test_public_api_is_exactly_build_and_the_two_renderers() -> None:
    import mamori.report

    assert sorted(mamori.report.__all__) == ["ReportData", "build", "render_html", "render_pdf"]
    assert all(getattr(mamori.report, name).__doc__ for name in mamori.report.__all__)
