"""Evidence files: stored once under their SHA-256 in the data folder, never under the uploaded name,
bounded in size, checked against the digest when read back."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases import workflow
from mamori.cases.evidence import clean_filename, evidence_path, read_evidence, store_evidence
from mamori.errors import MamoriError

AddAlert = Callable[..., int]


def test_a_file_is_stored_under_its_sha256_and_read_back_unchanged(tmp_path: Path) -> None:
    data = b"\x00\x01 memory dump \xff" * 100
    stored = store_evidence(tmp_path / "evidence", data)
    digest = hashlib.sha256(data).hexdigest()
    assert (stored.sha256, stored.size, stored.relative_path) == (digest, len(data), f"evidence/{digest}")
    assert (tmp_path / "evidence" / digest).read_bytes() == data
    assert read_evidence(tmp_path / "evidence", digest) == data
    assert [p.name for p in (tmp_path / "evidence").iterdir()] == [digest]


def test_the_same_content_twice_is_stored_once(tmp_path: Path) -> None:
    first = store_evidence(tmp_path, b"same")
    second = store_evidence(tmp_path, b"same")
    assert first == second
    assert len(list(tmp_path.iterdir())) == 1


def test_a_file_above_the_size_limit_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(MamoriError, match="the limit is 10"):
        store_evidence(tmp_path / "evidence", b"x" * 11, max_bytes=10)
    assert not (tmp_path / "evidence").exists()


def test_a_changed_file_on_disk_no_longer_reads_back(tmp_path: Path) -> None:
    stored = store_evidence(tmp_path, b"original")
    (tmp_path / stored.sha256).write_bytes(b"tampered")
    with pytest.raises(MamoriError, match="no longer matches its SHA-256"):
        read_evidence(tmp_path, stored.sha256)


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\..\\boot.ini", "/abs/../x"])
def test_only_a_sha256_digest_names_a_stored_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(MamoriError, match="is not a SHA-256 digest"):
        evidence_path(tmp_path, name)


@pytest.mark.parametrize(("uploaded", "shown"), [("../../etc/passwd", "passwd"), ("C:\\Users\\a\\dump.dmp", "dump.dmp"),
                                                 ("bad\x00name\n.txt", "bad_name_.txt"), ("..", "evidence.bin"),
                                                 ("", "evidence.bin")])
def test_the_uploaded_name_is_kept_only_as_clean_text(uploaded: str, shown: str) -> None:
    assert clean_filename(uploaded) == shown


def test_attaching_evidence_records_its_name_digest_size_and_uploader(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    alert_id = add_alert()
    with case_sessions.begin() as session:
        incident = workflow.open_incident(session, [alert_id], "alice")
        row = workflow.add_evidence(session, incident.id, "../proc.dmp", b"dump", "bob", tmp_path / "evidence",
                                    content_type="application/x-dmp")
        shown = workflow.evidence_dict(row)
    digest = hashlib.sha256(b"dump").hexdigest()
    assert {k: shown[k] for k in ("filename", "sha256", "size", "content_type", "uploaded_by")} == {
        "filename": "proc.dmp", "sha256": digest, "size": 4, "content_type": "application/x-dmp",
        "uploaded_by": "bob"}
    assert read_evidence(tmp_path / "evidence", digest) == b"dump"


def test_an_upload_above_the_limit_is_refused_with_413_while_it_is_read() -> None:
    import io

    from fastapi import HTTPException, UploadFile

    from mamori.api.routes_incidents import read_upload

    assert read_upload(UploadFile(io.BytesIO(b"x" * 10), filename="a"), 10) == b"x" * 10
    with pytest.raises(HTTPException) as caught:
        read_upload(UploadFile(io.BytesIO(b"x" * 11), filename="a"), 10)
    assert caught.value.status_code == 413
