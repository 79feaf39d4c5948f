"""Syslog over TLS (RFC 5425, octet counting) reaches the store; ``mamori serve`` prints the first admin
token on a first start; ``mamori users`` and ``mamori tokens`` manage access (tokens shown once,
revocation takes effect)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from service_fixtures import syslog_line, windows_event

from mamori.service.cli import tokens, users
from mamori.service.launch import ServiceProcess


def _certificate(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return cert, key


def test_syslog_over_tls_is_stored_and_the_first_start_prints_an_admin_token(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    process = ServiceProcess(tmp_path / "data", tls=(cert, key), extra={"MAMORI_BATCH_SECONDS": "0.1"})
    process.start()
    try:
        log = process.log.read_text()
        token = next(line.split(": ", 1)[1].strip() for line in log.splitlines() if "First admin token" in line)
        assert "OpenAPI: http://127.0.0.1:" in log and "Console: http://127.0.0.1:" in log
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        _send_over_tls(int(process.info["syslog_tls"]), context, 20, "TLSHOST")
        assert _stored(process, token, "TLSHOST", 20) == 20
    finally:
        process.stop()


def _send_over_tls(port: int, context: ssl.SSLContext, count: int, host: str) -> None:
    """``count`` Windows events from ``host`` as octet-counted syslog over TLS."""
    frames = b""
    for n in range(count):
        message = syslog_line(windows_event(f"tls{n}", host, False)).rstrip(b"\n")
        frames += str(len(message)).encode() + b" " + message
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(frames)
        sock.shutdown(socket.SHUT_WR)  # ends the write side of TLS; the service answers with its close
        try:
            while sock.recv(4096):
                pass
        except (ssl.SSLError, OSError):
            pass


def _stored(process: ServiceProcess, token: str, host: str, expected: int) -> int:
    """The events of ``host`` stored, once there are ``expected`` of them or 30 s have passed."""
    deadline = time.monotonic() + 30
    while True:
        total = int(httpx.get(process.url + "/api/v1/events", params={"field": f"Computer={host}"},
                              headers={"Authorization": f"Bearer {token}"}).json()["total"])
        if total >= expected or time.monotonic() > deadline:
            return total
        time.sleep(0.1)


def _refused(port: int, context: ssl.SSLContext) -> bool:
    """Whether the service ends a TLS connection from this sender (a sender it takes keeps it open)."""
    try:
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.settimeout(5)
            sock.sendall(b"5 hello")
            return sock.recv(10) == b""
    except (ssl.SSLError, ConnectionError):
        return True
    except TimeoutError:
        return False


def test_syslog_over_tls_with_a_client_ca_takes_only_senders_with_a_certificate_it_signed(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)  # self-signed: the server's certificate, the CA and the sender's
    process = ServiceProcess(tmp_path / "data", tls=(cert, key),
                             extra={"MAMORI_BATCH_SECONDS": "0.1", "MAMORI_TLS_CLIENT_CA": str(cert)})
    process.start()
    try:
        log = process.log.read_text()
        token = next(line.split(": ", 1)[1].strip() for line in log.splitlines() if "First admin token" in line)
        port = int(process.info["syslog_tls"])
        anonymous = ssl.create_default_context(cafile=str(cert))
        anonymous.check_hostname = False
        assert _refused(port, anonymous)
        with contextlib.suppress(ssl.SSLError, OSError):  # the service may end it at any step
            _send_over_tls(port, anonymous, 5, "NOCERTHOST")  # sent before the signed sender's: stored first, if at all
        signed = ssl.create_default_context(cafile=str(cert))
        signed.check_hostname = False
        signed.load_cert_chain(str(cert), str(key))
        _send_over_tls(port, signed, 10, "MTLSHOST")
        assert _stored(process, token, "MTLSHOST", 10) == 10
        assert _stored(process, token, "NOCERTHOST", 0) == 0
    finally:
        process.stop()


def test_users_and_tokens_commands_issue_list_and_revoke_access(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    runner = CliRunner()
    added = runner.invoke(users, ["add", "hanako", "--role", "analyst", "--data-dir", data])
    assert added.exit_code == 0, added.output
    assert "user hanako (analyst) added" in added.output
    first = added.output.split("token (shown once): ")[1].strip()
    listed = runner.invoke(users, ["list", "--data-dir", data])
    assert "hanako\tanalyst\tactive" in listed.output
    created = runner.invoke(tokens, ["create", "--user", "hanako", "--name", "laptop", "--data-dir", data])
    second = created.output.strip()
    assert second.startswith("mamori_") and second != first
    shown = runner.invoke(tokens, ["list", "--data-dir", data]).output
    assert "laptop\tactive" in shown
    assert first not in shown and second not in shown  # secrets are never shown again
    assert runner.invoke(tokens, ["revoke", "laptop", "--data-dir", data]).exit_code == 0
    assert "laptop\trevoked" in runner.invoke(tokens, ["list", "--data-dir", data]).output
    wrong = runner.invoke(users, ["add", "x", "--role", "root", "--data-dir", data])
    assert wrong.exit_code == 2
    again = runner.invoke(users, ["add", "hanako", "--data-dir", data])
    assert again.exit_code == 2 and "exists already" in again.output

    process = ServiceProcess(tmp_path / "data")
    process.start()
    try:
        assert "First admin token" not in process.log.read_text()  # users exist: no bootstrap
        ok = httpx.get(process.url + "/api/v1/alerts", headers={"Authorization": f"Bearer {first}"})
        revoked = httpx.get(process.url + "/api/v1/alerts", headers={"Authorization": f"Bearer {second}"})
        assert (ok.status_code, revoked.status_code) == (200, 401)
    finally:
        process.stop()
