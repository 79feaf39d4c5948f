"""Run an ASGI app (the TAXII server) with uvicorn in a background thread, over HTTP or HTTPS.

Used stand-alone (``mamori intel serve``-style wiring) and by tests, which need a real server on a
free local port that starts and stops cleanly.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from mamori.intel.errors import IntelError


@dataclass(frozen=True)
class TlsFiles:
    """Certificate and key files for HTTPS."""

    certfile: Path
    keyfile: Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class BackgroundServer:
    """A uvicorn server in a daemon thread; use as a context manager or call start/stop."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, tls: TlsFiles | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.tls = tls
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(tls.certfile) if tls else None,
            ssl_keyfile=str(tls.keyfile) if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """The base URL of the server."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Start serving and wait until the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise IntelError("the server did not start", where=self.url, hint="is the port free?")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
