"""GET /api/v1/incidents/{id}/report through a real ``mamori serve`` child: HTML and PDF, Japanese and
English, viewer role, 404 for an unknown incident."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader
from report_fixtures import populate_incident

from mamori.config import load_settings
from mamori.service.launch import ServiceProcess, seed_tokens
from mamori.service.runtime import open_records

RULE = """
title: Whoami run
id: 5f4c3b2a-1111-4222-8333-944455556666
status: test
level: low
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\\\\whoami.exe'}
  condition: selection
"""


@dataclass(frozen=True)
class Served:
    url: str
    tokens: dict[str, str]
    incident_id: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("report-api")
    rules = root / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(textwrap.dedent(RULE), encoding="utf-8")
    data = root / "data"
    tokens = seed_tokens(data)
    engine, sessions = open_records(load_settings(None, env={}, data_dir=data))
    incident_id = populate_incident(sessions, data / "evidence")
    engine.dispose()
    process = ServiceProcess(data, rules=[rules], extra={"MAMORI_BATCH_SECONDS": "0.1"})
    process.start()
    try:
        yield Served(process.url, tokens, incident_id)
    finally:
        process.stop()


def _get(served: Served, path: str, role: str | None = "viewer") -> httpx.Response:
    headers = {"Authorization": f"Bearer {served.tokens[role]}"} if role else {}
    return httpx.get(served.url + path, headers=headers, timeout=120)


def test_viewer_downloads_the_japanese_pdf(served: Served, tmp_path: Path) -> None:
    response = _get(served, f"/api/v1/incidents/{served.incident_id}/report?lang=ja&format=pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="incident-{served.incident_id}-ja.pdf"')
    reader = PdfReader(io.BytesIO(response.content))
    text = "".join(page.extract_text() for page in reader.pages).replace("\n", "")
    assert "インシデント報告書" in text and "2026年11月29日 14:05 JST" in text
    fonts = {str(f["/BaseFont"]).split("+", 1)[-1] for page in reader.pages
             for f in page["/Resources"]["/Font"].get_object().values()}
    assert fonts and all("CJK-JP" in name for name in fonts), fonts


def test_html_report_in_each_language(served: Served) -> None:
    ja = _get(served, f"/api/v1/incidents/{served.incident_id}/report?lang=ja")
    assert ja.status_code == 200 and ja.headers["content-type"].startswith("text/html")
    assert "エグゼクティブサマリー" in ja.text and "&lt;script&gt;" in ja.text
    en = _get(served, f"/api/v1/incidents/{served.incident_id}/report?lang=en&tz=Asia/Tokyo")
    assert "Executive summary" in en.text and "29 Nov 2026 14:05 JST" in en.text


def test_report_needs_a_token_and_a_known_incident(served: Served) -> None:
    assert _get(served, f"/api/v1/incidents/{served.incident_id}/report", role=None).status_code == 401
    missing = _get(served, "/api/v1/incidents/999/report?lang=ja")
    assert missing.status_code == 404 and "no incident 999" in missing.text
    assert _get(served, f"/api/v1/incidents/{served.incident_id}/report?lang=fr").status_code == 422
    bad_zone = _get(served, f"/api/v1/incidents/{served.incident_id}/report?tz=Mars/Olympus")
    assert bad_zone.status_code == 422 and "unknown time zone" in bad_zone.text
