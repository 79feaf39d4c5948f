"""``mamori report``: writes the HTML or PDF report of an incident from a data folder; errors are a
message and a hint, never a traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from report_fixtures import HOSTILE_NOTE
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from mamori.cli import main

Db = tuple[sessionmaker[Session], int]


def test_report_command_writes_japanese_html_and_pdf(report_db: Db, tmp_path: Path) -> None:
    _, incident_id = report_db
    html_file, pdf_file = tmp_path / "out" / "report.html", tmp_path / "out" / "report.pdf"
    runner = CliRunner()
    done = runner.invoke(main, ["report", str(incident_id), "--lang", "ja", "--format", "html", "-o", str(html_file),
                                "--data-dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    html = html_file.read_text("utf-8")
    assert "インシデント報告書" in html and "2026年11月29日 14:05 JST" in html
    assert HOSTILE_NOTE not in html and "&lt;script&gt;" in html
    done = runner.invoke(main, ["report", str(incident_id), "--lang", "ja", "--format", "pdf", "-o", str(pdf_file),
                                "--data-dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert pdf_file.read_bytes().startswith(b"%PDF-")
    assert f"report of incident {incident_id} (ja, pdf) written to" in done.output


def test_report_command_takes_a_time_zone(report_db: Db, tmp_path: Path) -> None:
    _, incident_id = report_db
    target = tmp_path / "report.html"
    done = CliRunner().invoke(main, ["report", str(incident_id), "--lang", "en", "--tz", "Asia/Tokyo", "-o",
                                     str(target), "--data-dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "29 Nov 2026 14:05 JST" in target.read_text("utf-8")


def test_report_command_errors_name_the_problem(report_db: Db, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["report", "999", "--data-dir", str(tmp_path), "-o", str(tmp_path / "x.html")])
    assert done.exit_code == 2 and "no incident 999" in done.output and "Traceback" not in done.output
    assert not (tmp_path / "x.html").exists()
    empty = tmp_path / "empty"
    done = runner.invoke(main, ["report", "1", "--data-dir", str(empty)])
    assert done.exit_code == 2 and "no Mamori database" in done.output
    assert not empty.exists()
    done = runner.invoke(main, ["report", "1", "--tz", "Mars/Olympus", "--data-dir", str(tmp_path)])
    assert done.exit_code == 2 and "unknown time zone" in done.output


def test_report_reads_a_database_carrying_revisions_of_rooms_it_does_not_load(report_db: Db, tmp_path: Path) -> None:
    """A data folder migrated by `mamori serve` holds every room's revision; the report only reads it."""
    sessions, incident_id = report_db
    with sessions.begin() as session:
        session.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001_a_room_not_loaded_here')"))
    target = tmp_path / "report.html"
    done = CliRunner().invoke(main, ["report", str(incident_id), "-o", str(target), "--data-dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "Incident report" in target.read_text("utf-8")
