"""``mamori demo`` as a user runs it: speaks Japanese when asked, prints where to look, keeps the service
serving until interrupted, then stops it. Uses only the SigmaHQ rules the demo's table names (fast start)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import httpx
import yaml
from mamori_testing import shared_data


def _table_rules(target: Path) -> Path:
    sigma = shared_data("sigmahq", "rules")
    table = yaml.safe_load((resources.files("mamori.demo") / "data" / "detections.yaml").read_text("utf-8"))
    for rows in table["stages"].values():
        for row in rows:
            out = target / row["file"]
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(sigma / row["file"], out)
    return target


def test_the_demo_command_prints_where_to_look_in_japanese_and_serves_until_interrupted(tmp_path: Path) -> None:
    rules = _table_rules(tmp_path / "rules")
    env = {**os.environ, "MAMORI_HOME": str(tmp_path / "home"), "MAMORI_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "mamori", "demo", "--lang", "ja", "--rules", str(rules),
               "--data-dir", str(tmp_path / "mamori-demo"), "--save-logs", str(tmp_path / "logs")]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "インシデントがコンソールに表示されました" in text, text
        console = re.search(r"コンソール:\s+(http://127\.0\.0\.1:\d+)/console/incidents/(\d+)", text)
        assert console is not None, text
        login = re.search(r"ログイン:\s+(\S+) / パスワード: (\S+)", text)
        assert login is not None, text
        base = console.group(1)
        with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as browser:
            answer = browser.post("/console/login", data={"username": login.group(1), "password": login.group(2)})
            assert answer.status_code == 303
            page = browser.get(f"/console/incidents/{console.group(2)}")
            assert page.status_code == 200
        assert (tmp_path / "logs" / "winlogbeat.jsonl").stat().st_size > 1_000_000
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, rest
        assert "停止" in rest
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
            except httpx.TransportError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the service still answers after the demo stopped")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
