"""Syslog over UDP: datagrams gathered for a moment are spooled one entry per sender, each entry's
origin naming the sender, as a TCP connection's does."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from mamori.collect.spool import Spool
from mamori.collect.syslog_listen import SyslogInputs


async def _send_from_two_senders(inputs: SyslogInputs) -> None:
    port = await inputs.start_udp("127.0.0.1", 0)
    first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    second.bind(("127.0.0.2", 0))  # another loopback address: another sender
    try:
        for number in range(3):
            first.sendto(f"<13>Nov 30 01:00:0{number} alpha app: one {number}".encode(), ("127.0.0.1", port))
        second.sendto(b"<13>Nov 30 01:00:09 beta app: two", ("127.0.0.1", port))
        second.sendto(b"\xff\xfe not text", ("127.0.0.1", port))
        await asyncio.sleep(0.3)  # past the gathering moment
    finally:
        first.close()
        second.close()
        await inputs.close()


def test_udp_datagrams_are_spooled_per_sender_with_the_sender_in_the_origin(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    inputs = SyslogInputs(spool, 64 * 1024)
    asyncio.run(_send_from_two_senders(inputs))
    entries = spool.read(0, 1000, 1.0)
    spool.close()
    records = {(e.fmt, e.origin): list(e.records) for e in entries}
    alpha = [f"<13>Nov 30 01:00:0{n} alpha app: one {n}" for n in range(3)]
    assert records[("syslog", "syslog+udp://127.0.0.1")] == alpha
    assert records[("syslog", "syslog+udp://127.0.0.2")] == ["<13>Nov 30 01:00:09 beta app: two"]
    quarantined = [origin for fmt, origin in records if fmt != "syslog"]
    assert quarantined == ["syslog+udp://127.0.0.2"]
    assert (inputs.counters.received, inputs.counters.rejected) == (4, 1)
