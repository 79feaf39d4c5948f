"""Start ``mamori serve`` in a child process and find where it listens: for tests, benchmarks and demos.

The child writes ``<data>/service.json`` (ports and pid) once every input listens; ``ServiceProcess``
waits for it, and can stop the child gently (SIGTERM) or kill it (SIGKILL) to test crash recovery.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from mamori.errors import MamoriError


class ServiceProcess:
    """A ``mamori serve`` child on 127.0.0.1 with free ports and the given data folder."""

    def __init__(self, data_dir: Path, rules: list[Path] | None = None, extra: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.data_dir = data_dir
        self.rules = rules or []
        self.extra = extra or {}
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.log = data_dir.parent / f"{data_dir.name}-serve.log"

    def start(self, timeout: float = 60.0) -> dict[str, Any]:
        """Start the child and wait until it listens; return its ``service.json``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        marker = self.data_dir / "service.json"
        marker.unlink(missing_ok=True)
        args = [sys.executable, "-c", "from mamori.service.cli import serve; serve()", "--data-dir",
                str(self.data_dir), "--port", "0", "--syslog-tcp-port", "0", "--syslog-udp-port", "0"]
        for rule in self.rules:
            args += ["--rules", str(rule)]
        env = {**os.environ, **self.extra}
        if self.tls:
            args += ["--syslog-tls-port", "0"]
            env["MAMORI_TLS_CERT"], env["MAMORI_TLS_KEY"] = str(self.tls[0]), str(self.tls[1])
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MamoriError(f"the service exited with {self.process.returncode}",
                                  where=str(self.log), hint=self.log.read_text(errors="replace")[-2000:])
            if marker.exists():
                info: dict[str, Any] = orjson.loads(marker.read_bytes())
                if info.get("pid") == self.process.pid:
                    self.info = info
                    return info
            time.sleep(0.05)
        self.kill()
        raise MamoriError("the service did not start in time", where=str(self.log))

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.info['api']}"

    def kill(self) -> None:
        """SIGKILL the child (a crash at any instant) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the child and wait for a clean exit (SIGKILL if it hangs)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


def seed_tokens(data_dir: Path, roles: tuple[str, ...] = ("admin", "analyst", "viewer")) -> dict[str, str]:
    """Create one user per role in the data folder's database (before the service starts) and return a
    token for each, keyed by role."""
    from mamori.api.auth import create_user, issue_token
    from mamori.config import load_settings
    from mamori.service.runtime import open_records

    engine, sessions = open_records(load_settings(None, env={}, data_dir=data_dir))
    out: dict[str, str] = {}
    with sessions.begin() as session:
        for role in roles:
            create_user(session, f"{role}-user", role)
            out[role] = issue_token(session, f"{role}-user", "test")
    engine.dispose()
    return out


def running_service(data_dir: Path) -> dict[str, Any] | None:
    """What ``<data>/service.json`` says (pid, host, ports) when the process it names is alive: a
    ``mamori serve`` is running on this data folder. None when none is (or it was killed)."""
    try:
        info = orjson.loads((data_dir / "service.json").read_bytes())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None
    return info if isinstance(info, dict) else None
