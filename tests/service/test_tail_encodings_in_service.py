"""Through a real ``mamori serve`` child following a folder with ``tail_encoding`` set per path: a CP932
appliance log and a UTF-16 Windows log are stored as the right Japanese text, and a line with bad bytes
is stored with U+FFFD, quarantined naming the file, line and byte offset, and counted in the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from service_testing import Running, running_service, wait_for

SINCE = "2000-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A child following ``<root>/drop``: ``appliance/`` in Shift_JIS, ``windows/`` in UTF-16, the rest UTF-8."""
    root = tmp_path_factory.mktemp("tail-encodings")
    drop = root / "drop"
    drop.mkdir()
    encodings = f"utf-8, {drop / 'appliance'}=shift_jis, {drop / 'windows'}=utf-16"
    with running_service(root, {}, {"MAMORI_TAIL": str(drop), "MAMORI_TAIL_ENCODING": encodings}) as running:
        yield running


def _found(client: Any, text: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = wait_for(lambda: client.get("/api/v1/events", params={
        "q": text, "since": SINCE}).json()["events"], timeout=60.0)
    return events


def test_shift_jis_and_utf16_files_are_stored_as_their_japanese_text(service: Running) -> None:
    drop = service.data_dir.parent / "drop"
    (drop / "appliance").mkdir()
    (drop / "windows").mkdir()
    appliance = "<134>Oct 11 22:14:15 fw01 ログイン失敗 ユーザー=山田太郎 部署=①営業部"
    (drop / "appliance" / "fw.log").write_bytes(appliance.encode("cp932") + b"\r\n")
    windows = "<134>Oct 11 22:14:16 dc01 上長の承認が必要です 𠮷野"
    (drop / "windows" / "app.log").write_bytes((windows + "\r\n").encode("utf-16"))
    with service.client("analyst") as client:
        [stored] = _found(client, "山田太郎")
        assert stored["_raw"] == appliance
        [stored] = _found(client, "上長の承認")
        assert stored["_raw"] == windows


def test_a_line_with_bad_bytes_is_stored_quarantined_and_counted(service: Running) -> None:
    log = service.data_dir.parent / "drop" / "linux.log"
    first = b"<13>Oct 11 22:14:15 web01 sshd[1]: ok\n"
    log.write_bytes(first + b"<13>Oct 11 22:14:16 web01 sshd[1]: user \xff\xfe marker-7\n")
    with service.client("analyst") as client:
        [stored] = _found(client, "marker-7")
        assert stored["_raw"] == "<13>Oct 11 22:14:16 web01 sshd[1]: user \ufffd\ufffd marker-7"
        records = wait_for(lambda: [r for r in client.get("/api/v1/quarantine").json()["records"]
                                    if r["input"] == str(log)], timeout=60.0)
        [record] = records
        assert record["reason"].startswith(f"line 2 (byte {len(first)}): not valid utf-8")
        assert record["raw"].endswith("user \\xff\\xfe marker-7")
        metrics = client.get("/metrics").text.splitlines()
        assert "mamori_tail_undecodable_lines_total 1" in metrics
