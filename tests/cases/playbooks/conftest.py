"""Real servers and a real records database for the playbook tests: an HTTP server that records the
webhooks it receives (and can be told to fail), an aiosmtpd SMTP server, and a migrated SQLite file."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import textwrap
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from mamori_testing import records_sessions
from playbook_testing import HttpSink, Received, SmtpSink
from sqlalchemy.orm import Session, sessionmaker

import mamori.cases.playbooks.records  # noqa: F401  (registers the playbook migrations)
from mamori.cases.playbooks.loader import load_folder
from mamori.cases.playbooks.model import Library


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            if sink.gate is not None:
                sink.gate.wait(30)
            sink.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                          orjson.loads(raw) if raw else None))
            status = sink.statuses.pop(0) if sink.statuses else 200
            answer = b'{"ok": true}' if status < 400 else b'{"error": "try again"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sink.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield sink
    finally:
        if sink.gate is not None:
            sink.gate.set()
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_smtp(sink: SmtpSink, **options: Any) -> Any:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.original_content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            sink.messages.append(message)
            sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            sink.logins.append((data.login.decode(), data.password.decode()))
            return AuthResult(success=data.password == b"s3cret-smtp-pass")
        return AuthResult(success=False, handled=False)

    controller = Controller(Handler(), hostname="127.0.0.1", port=sink.port, authenticator=authenticator,
                            **options)
    controller.start()
    return controller


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """Plain SMTP with AUTH allowed without TLS (a lab relay)."""
    sink = SmtpSink(port=_free_port())
    controller = _start_smtp(sink, auth_require_tls=False)
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_tls_sink(tmp_path: Path) -> Iterator[tuple[SmtpSink, Path]]:
    """SMTP that requires STARTTLS before AUTH and mail, with a self-signed certificate for 127.0.0.1;
    yields the sink and the certificate (the CA file a playbook names)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    sink = SmtpSink(port=_free_port())
    controller = _start_smtp(sink, tls_context=context, require_starttls=True)
    try:
        yield sink, cert
    finally:
        controller.stop()


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with records_sessions(tmp_path) as made:
        yield made


@pytest.fixture
def write_playbooks(tmp_path: Path) -> Callable[..., Library]:
    """Write playbook texts (name -> YAML) into a folder and load it; fails on any refusal."""
    folder = tmp_path / "playbooks"

    def write(strict: bool = True, **texts: str) -> Library:
        folder.mkdir(exist_ok=True)
        for name, text in texts.items():
            (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        library = load_folder(folder)
        if strict:
            assert not library.refused, [str(r) for r in library.refused]
        return library

    return write
