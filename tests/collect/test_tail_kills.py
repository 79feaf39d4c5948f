"""A tailer killed (SIGKILL) again and again while logrotate renames and gzips the file it follows, some
rotations happening while it is down, spools every line exactly once: the rest of a file rotated away
while it was down is read from the gzipped copy, and chunks spooled just before a kill (the
checkpoint not yet saved) are not spooled again."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mamori.collect.spool import Spool

CHILD = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from mamori.collect.spool import Spool
    from mamori.collect.tail import Tailer

    if __name__ == "__main__":
        folder = Path(sys.argv[1])
        tailer = Tailer([Path(sys.argv[2])], Spool(folder / "spool"), folder / "cp.json", interval=0.02,
                        encoding=sys.argv[3])
        tailer.poll()  # up: what it follows is in its checkpoint
        tailer.start()
        (folder / "ready").touch()
        while True:
            time.sleep(1)
''')


def _start(tmp_path: Path, log: Path, encoding: str) -> subprocess.Popen[bytes]:
    (tmp_path / "ready").unlink(missing_ok=True)
    child = subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(tmp_path), str(log), encoding])
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists():
        assert child.poll() is None and time.monotonic() < deadline, "the tailer did not start"
        time.sleep(0.02)
    return child


def _rotate(log: Path, number: int, text: str) -> None:
    """logrotate without delaycompress: rename, create the new file, gzip the old one."""
    rotated = log.with_name(f"{log.name}.{number}")
    os.rename(log, rotated)
    log.write_bytes(text.encode("utf-16") if text else b"")
    with rotated.open("rb") as source, gzip.open(rotated.with_name(rotated.name + ".gz"), "wb") as sink:
        shutil.copyfileobj(source, sink)
    rotated.unlink()


@pytest.mark.parametrize("encoding", ["utf-16"])
def test_lines_survive_kills_and_rotations_into_gzip_exactly_once(tmp_path: Path, encoding: str) -> None:
    (tmp_path / "child.py").write_text(CHILD, encoding="utf-8")
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    log.write_bytes("開始 0\n".encode("utf-16"))  # UTF-16 with a BOM, as Windows writes it
    written = ["開始 0"]
    chance = random.Random(7)
    child: subprocess.Popen[bytes] | None = _start(tmp_path, log, encoding)
    rotations = kills = 0
    try:
        for step in range(400):
            lines = [f"ログ {step:04d} {n}" for n in range(chance.randint(1, 8))]
            with log.open("ab") as handle:
                handle.write("".join(f"{line}\r\n" for line in lines).encode("utf-16-le"))
            written += lines
            if step % 40 == 39:
                rotations += 1
                _rotate(log, rotations, "")
            if step % 25 == 12 and child is not None:
                time.sleep(chance.uniform(0.0, 0.1))
                child.send_signal(signal.SIGKILL)
                child.wait()
                kills += 1
                child = None
            elif child is None and step % 25 == 20:  # down for a few steps: a rotation may happen meanwhile
                child = _start(tmp_path, log, encoding)
            time.sleep(0.005)
        if child is None:
            child = _start(tmp_path, log, encoding)
        spool = None
        deadline = time.monotonic() + 60
        expected = sorted(written)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            child.send_signal(signal.SIGKILL)
            child.wait()
            spool = Spool(tmp_path / "spool")
            got = [r for e in spool.read(0, 10_000_000, 0.05) if e.fmt != "quarantine" for r in e.records]
            spool.close()
            if len(got) >= len(expected):
                break
            child = _start(tmp_path, log, encoding)
        child = None
    finally:
        if child is not None:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert kills >= 10 and rotations >= 9
    assert sorted(got) == expected  # every line once: none lost, none twice
