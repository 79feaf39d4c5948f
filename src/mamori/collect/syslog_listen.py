"""Syslog listeners: UDP, TCP (octet counting and newline framing) and TLS (RFC 5425), on asyncio.

Each connection reads a chunk, frames it, appends the messages to the spool and waits until they are
durable before reading more: when the pipeline falls behind (spool backlog over its limit) the
listener stops reading, the kernel buffers fill and the sender is slowed by TCP itself. UDP cannot
be slowed: datagrams that arrive while the spool is full are dropped and counted, never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from mamori.collect.framing import Rejected, SyslogFramer, decode_messages
from mamori.collect.spool import Entry, Spool

READ_BYTES = 256 * 1024
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes asked of the kernel (it caps this at net.core.rmem_max)
FULL_POLL_SECONDS = 0.05
QUARANTINE = "quarantine"


@dataclass
class InputCounters:
    """What the listeners saw: messages accepted and rejected, datagrams dropped, connections."""

    received: int = 0
    rejected: int = 0
    dropped: int = 0
    connections: int = 0


def quarantine_records(rejected: list[Rejected], where: str) -> list[str]:
    """Quarantine records (JSON text) for refused inputs: where, why and the first bytes."""
    return [orjson.dumps({"where": where, "reason": r.reason,
                          "raw": r.raw[:2048].decode("utf-8", errors="backslashreplace")}).decode()
            for r in rejected]


class SyslogInputs:
    """The syslog servers of one service, writing to one spool."""

    def __init__(self, spool: Spool, max_line_bytes: int, counters: InputCounters | None = None,
                 on_event: Callable[[str, int], None] | None = None) -> None:
        self.spool = spool
        self.max_line_bytes = max_line_bytes
        self.counters = counters or InputCounters()
        self.on_event = on_event or (lambda _kind, _n: None)
        self.servers: list[asyncio.AbstractServer] = []
        self.transports: list[asyncio.BaseTransport] = []
        self.ports: dict[str, int] = {}

    async def _spool(self, fmt: str, origin: str, records: list[str]) -> None:
        if records:
            entry = Entry(fmt, origin, tuple(records), time.time_ns())
            await asyncio.wrap_future(self.spool.append(entry))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, scheme: str) -> None:
        peer = writer.get_extra_info("peername")
        origin = f"syslog+{scheme}://{peer[0] if peer else 'unknown'}"
        framer = SyslogFramer(self.max_line_bytes)
        self.counters.connections += 1
        try:
            while True:
                while self.spool.full:  # back-pressure: stop reading, TCP slows the sender
                    await asyncio.sleep(FULL_POLL_SECONDS)
                data = await reader.read(READ_BYTES)
                if data:
                    texts, rejected = framer.feed_text(data)
                else:
                    messages, rejected = framer.flush()
                    texts, bad = decode_messages(messages)
                    rejected += bad
                await self._spool("syslog", origin, texts)
                await self._spool(QUARANTINE, origin, quarantine_records(rejected, origin))
                self.counters.received += len(texts)
                self.counters.rejected += len(rejected)
                self.on_event(scheme, len(texts))
                if not data:
                    break
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def start_tcp(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen for syslog over TCP (or TLS when ``tls`` is given); return the bound port."""
        scheme = "tls" if tls else "tcp"

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._handle(reader, writer, scheme)

        server = await asyncio.start_server(handle, host, port, ssl=tls, limit=READ_BYTES * 2)
        self.servers.append(server)
        bound = int(server.sockets[0].getsockname()[1])
        self.ports[scheme] = bound
        return bound

    async def start_udp(self, host: str, port: int) -> int:
        """Listen for syslog datagrams (one message each); return the bound port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=(host, port))
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError):  # a bigger kernel buffer rides out a busy moment (UDP cannot wait)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        self.transports.append(transport)
        bound = int(transport.get_extra_info("sockname")[1])
        self.ports["udp"] = bound
        return bound

    async def close(self) -> None:
        """Stop every listener."""
        for server in self.servers:
            server.close()
            await server.wait_closed()
        for transport in self.transports:
            transport.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    """Gathers datagrams for a moment, then appends them as one spool entry per sender (fewer fsyncs;
    each entry's origin names the sender's address, as a TCP connection's does)."""

    def __init__(self, inputs: SyslogInputs) -> None:
        self.inputs = inputs
        self.pending: dict[str, list[str]] = {}
        self.rejected: dict[str, list[Rejected]] = {}
        self.scheduled = False

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        counters = self.inputs.counters
        if self.inputs.spool.full:
            counters.dropped += 1  # counted and exported as a metric: UDP senders cannot be slowed
            return
        sender = addr[0] if addr else "unknown"
        if len(data) > self.inputs.max_line_bytes:
            self.rejected.setdefault(sender, []).append(Rejected(
                f"datagram of {len(data)} bytes is over the {self.inputs.max_line_bytes}-byte limit", data[:2048]))
        else:
            texts, bad = decode_messages([data.rstrip(b"\r\n\x00")])
            if texts:
                self.pending.setdefault(sender, []).extend(texts)
            if bad:
                self.rejected.setdefault(sender, []).extend(bad)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_later(0.02, self._flush)

    def _flush(self) -> None:
        self.scheduled = False
        pending, rejected = self.pending, self.rejected
        self.pending, self.rejected = {}, {}
        counters = self.inputs.counters
        received = sum(map(len, pending.values()))
        counters.received += received
        counters.rejected += sum(map(len, rejected.values()))
        self.inputs.on_event("udp", received)
        spool = self.inputs.spool
        for sender, texts in pending.items():
            spool.append(Entry("syslog", f"syslog+udp://{sender}", tuple(texts), time.time_ns()))
        for sender, bad in rejected.items():
            origin = f"syslog+udp://{sender}"
            spool.append(Entry(QUARANTINE, origin, tuple(quarantine_records(bad, origin)), time.time_ns()))


def tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """A server TLS context for RFC 5425 syslog (TLS 1.2 or later). With ``client_ca``, senders must
    present a certificate that CA signed (mutual authentication, as RFC 5425 §5 recommends): otherwise
    anyone who can reach the port can write events into the store."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
