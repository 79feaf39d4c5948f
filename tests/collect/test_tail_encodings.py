"""Tailed files in the encodings Japanese appliances and Windows servers write: CP932 (Shift_JIS), EUC-JP
and UTF-16 with a byte-order mark are read as the right text, lines are cut at the encoding's own line
breaks, checkpoints stay byte offsets that resume mid-file after a restart, a line whose bytes are not
valid is stored with U+FFFD and its raw bytes quarantined naming the file, line and byte offset, and a
bad ``tail_encoding`` is an error naming the path and the value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import orjson
import pytest

from mamori.collect.encodings import parse_tail_encodings
from mamori.collect.spool import Spool
from mamori.collect.tail import Tailer
from mamori.config import load_settings
from mamori.errors import MamoriError

# A FortiGate-like Japanese appliance line with CP932's extensions (①, ㈱) that plain Shift_JIS lacks.
JAPANESE = ["<134>Oct 11 22:14:15 fw01 ログイン失敗 ユーザー=山田太郎 部署=①営業部 会社=㈱守り",
            "<134>Oct 11 22:14:16 fw01 管理者がポリシーを変更しました"]
# Windows text: 上 is U+4E0A (its UTF-16LE bytes hold 0x0A), ਰ + the ideographic space make the bytes of a
# UTF-16 line break at an odd offset, 𠮷 is a surrogate pair.
WINDOWS = ["2025-01-06 09:00:00 ログオン 上司 𠮷野家", "2025-01-06 09:00:01 ਰ　警告", "2025-01-06 09:00:02 終了"]


def _spooled(spool: Spool) -> tuple[list[str], list[dict[str, str]]]:
    """The spooled lines and the quarantine records, in order."""
    lines: list[str] = []
    quarantined: list[dict[str, str]] = []
    for entry in spool.read(0, 1_000_000, 0.05):
        if entry.fmt == "quarantine":
            quarantined += [orjson.loads(r) for r in entry.records]
        else:
            lines += entry.records
    return lines, quarantined


def _tail_once(paths: list[Path], tmp_path: Path, encoding: str) -> tuple[list[str], list[dict[str, str]], Tailer]:
    spool = Spool(tmp_path / "spool")
    tailer = Tailer(paths, spool, tmp_path / "cp.json", encoding=encoding)
    tailer.poll()
    tailer.close()
    found = _spooled(spool)
    spool.close()
    return *found, tailer


def test_a_cp932_file_tails_to_the_right_japanese_text_when_named_shift_jis(tmp_path: Path) -> None:
    log = tmp_path / "fw.log"
    log.write_bytes("\r\n".join(JAPANESE).encode("cp932") + b"\r\n")
    lines, quarantined, tailer = _tail_once([log], tmp_path, f"utf-8, {log}=Shift_JIS")
    assert lines == JAPANESE
    assert quarantined == [] and tailer.undecodable == 0


def test_each_file_of_a_folder_is_read_in_the_encoding_named_for_it(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    (folder / "appliance").mkdir(parents=True)
    euc = [JAPANESE[1], "<134>Oct 11 22:14:18 ids01 不正アクセスを検知しました 送信元=192.0.2.7"]
    (folder / "appliance" / "ids.log").write_bytes("\n".join(euc).encode("euc_jp") + b"\n")
    (folder / "linux.log").write_bytes("\n".join(JAPANESE).encode("utf-8") + b"\n")
    lines, quarantined, _ = _tail_once([folder], tmp_path, f"{folder / 'appliance'}=euc-jp")
    assert sorted(lines) == sorted(euc + JAPANESE)
    assert quarantined == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "auto"])
def test_a_utf16le_file_with_a_bom_and_crlf_tails_to_its_lines(tmp_path: Path, encoding: str) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"\xff\xfe" + "\r\n".join(WINDOWS).encode("utf-16-le") + "\r\n".encode("utf-16-le"))
    lines, quarantined, _ = _tail_once([log], tmp_path, encoding)
    assert lines == WINDOWS  # no BOM, no carriage return, not cut inside 上 or between ਰ and the space
    assert quarantined == []


def test_a_utf16be_file_is_read_in_the_byte_order_its_bom_gives(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"\xfe\xff" + "\n".join(WINDOWS).encode("utf-16-be") + "\n".encode("utf-16-be"))
    assert _tail_once([log], tmp_path, "utf-16")[0] == WINDOWS


def test_auto_reads_each_line_as_utf8_or_cp932(tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    log.write_bytes(JAPANESE[0].encode("utf-8") + b"\n" + JAPANESE[1].encode("cp932") + b"\n")
    lines, quarantined, _ = _tail_once([log], tmp_path, "auto")
    assert lines == JAPANESE and quarantined == []


def test_a_utf16_checkpoint_resumes_mid_file_after_a_restart_without_loss_or_duplicates(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    encoded = [line.encode("utf-16-le") + b"\r\x00\n\x00" for line in WINDOWS]
    log.write_bytes(b"\xff\xfe" + encoded[0] + encoded[1][:7])  # the second line cut inside a character
    spool = Spool(tmp_path / "spool")
    checkpoint = tmp_path / "cp.json"
    first = Tailer([log], spool, checkpoint, encoding="utf-16")
    assert first.poll() == 1
    first.close()
    [saved] = orjson.loads(checkpoint.read_bytes()).values()
    assert saved["offset"] == 2 + len(encoded[0])  # a byte offset, after the BOM and the first line
    assert saved["line"] == 1

    with log.open("ab") as handle:
        handle.write(encoded[1][7:])
    second = Tailer([log], spool, checkpoint, encoding="utf-16")  # restarted
    assert second.poll() == 1
    second.close()
    before_third = checkpoint.read_bytes()
    with log.open("ab") as handle:
        handle.write(encoded[2])
    third = Tailer([log], spool, checkpoint, encoding="utf-16")
    assert third.poll() == 1
    third.close()
    checkpoint.write_bytes(before_third)  # killed before the checkpoint was saved: it is behind
    with log.open("ab") as handle:
        handle.write("2025-01-06 09:00:03 再開".encode("utf-16-le") + b"\n\x00")  # and the file grew since
    restarted = Tailer([log], spool, checkpoint, encoding="utf-16")
    assert restarted.poll() == 1  # only the new line: the chunk spooled before the kill is skipped
    restarted.close()
    assert _spooled(spool)[0] == [*WINDOWS, "2025-01-06 09:00:03 再開"]
    spool.close()


def test_bad_bytes_are_stored_replaced_and_quarantined_with_the_file_line_and_offset(tmp_path: Path) -> None:
    log = tmp_path / "fw.log"
    good = JAPANESE[0].encode("cp932") + b"\n"
    bad = b"<134>Oct 11 22:14:17 fw01 \x83\x8d\x83\x4f \x81\x20broken\n"  # ログ, then a lead byte without its pair
    log.write_bytes(good + bad + JAPANESE[1].encode("cp932") + b"\n")
    lines, quarantined, tailer = _tail_once([log], tmp_path, "cp932")
    assert lines == [JAPANESE[0], "<134>Oct 11 22:14:17 fw01 ログ \ufffd broken", JAPANESE[1]]  # never dropped
    assert tailer.undecodable == 1
    [record] = quarantined
    assert record["where"] == str(log)
    at = len(good) + bad.index(b"\x81 ")
    assert record["reason"].startswith(f"line 2 (byte {len(good)}): not valid cp932 (illegal multibyte sequence "
                                       f"at byte {at})")
    assert "tail_encoding" in record["reason"]
    assert record["raw"] == "<134>Oct 11 22:14:17 fw01 ログ \\x81 broken"  # readable, the bad byte escaped


def test_a_bad_line_is_quarantined_once_across_a_restart_that_reads_it_again(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"ok 1\nbad \xff\xfe here\nok 2\n")
    spool = Spool(tmp_path / "spool")
    checkpoint = tmp_path / "cp.json"
    for _ in range(2):  # the second tailer starts from no checkpoint, as after a kill before the first save
        tailer = Tailer([log], spool, checkpoint)
        tailer.poll()
        tailer.close()
        checkpoint.unlink()
    lines, quarantined = _spooled(spool)
    assert lines == ["ok 1", "bad \ufffd\ufffd here", "ok 2"]
    assert [q["reason"][:22] for q in quarantined] == ["line 2 (byte 5): not v"]
    spool.close()


def test_an_unknown_encoding_is_refused_naming_the_path_and_the_value(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with pytest.raises(MamoriError) as refused:
        parse_tail_encodings(f"utf-8, {logs / 'fw'}=shift-jiss", [logs])
    assert refused.value.where == f"tail_encoding ({logs / 'fw'})"
    assert "'shift-jiss' is not a text encoding" in refused.value.message
    with pytest.raises(MamoriError, match="'rot13' is not a text encoding"):
        Tailer([logs], Spool(tmp_path / "spool"), tmp_path / "cp.json", encoding="rot13")
    with pytest.raises(MamoriError, match="is not a tailed path nor inside one"):
        parse_tail_encodings(f"{tmp_path / 'other'}=cp932", [logs])


def test_tail_encoding_may_be_a_toml_table_of_paths(tmp_path: Path) -> None:
    config = tmp_path / "mamori.toml"
    config.write_text('[serve]\ntail = ["/var/log/fw", "/var/log/win"]\n'
                      '[serve.tail_encoding]\n"*" = "auto"\n"/var/log/fw" = "cp932"\n"/var/log/win" = "utf-16"\n',
                      encoding="utf-8")
    assert tomllib.loads(config.read_text())["serve"]["tail_encoding"]["*"] == "auto"
    settings = load_settings(config, env={})
    encodings = parse_tail_encodings(settings.tail_encoding, settings.tail)
    assert encodings.of(Path("/var/log/fw/a.log")) == "cp932"
    assert encodings.of(Path("/var/log/win/b.log")) == "utf-16"
    assert encodings.of(Path("/var/log/other.log")) == "auto"
