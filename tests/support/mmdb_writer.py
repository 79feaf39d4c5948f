"""A small MaxMind DB (``.mmdb``) writer for tests: IPv4 networks mapped to GeoLite2-style records,
written by the published format (a binary search tree of 24-bit records, a data section, metadata),
so the real ``maxminddb`` reader is tested on a file made here."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any


def _control(kind: int, size: int) -> bytes:
    if size >= 29:
        raise ValueError("values this long are not needed by the tests")
    if kind <= 7:
        return bytes([(kind << 5) | size])
    return bytes([size, kind - 7])  # extended type


def _uint(value: int, kind: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _control(kind, len(raw)) + raw


def encode(value: Any) -> bytes:
    """One value in the MaxMind DB data-section encoding."""
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _control(2, len(raw)) + raw
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        return _uint(value, 6 if value < 2**32 else 9)
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(f"cannot encode {value!r}")


def write_mmdb(path: Path, networks: dict[str, dict[str, Any]]) -> None:
    """Write an IPv4 database mapping each CIDR network of ``networks`` to its record."""
    data = b""
    offsets: list[tuple[int, int, int]] = []  # (network bits, prefix length, data offset)
    for cidr, value in networks.items():
        net = ipaddress.IPv4Network(cidr)
        offsets.append((int(net.network_address), net.prefixlen, len(data)))
        data += encode(value)
    nodes: list[list[Any]] = [[None, None]]
    for bits, length, offset in offsets:
        node = 0
        for depth in range(length):
            bit = (bits >> (31 - depth)) & 1
            if depth == length - 1:
                nodes[node][bit] = ("data", offset)
            else:
                if nodes[node][bit] is None:
                    nodes.append([None, None])
                    nodes[node][bit] = len(nodes) - 1
                node = nodes[node][bit]
    count = len(nodes)

    def record(value: Any) -> int:
        if value is None:
            return count
        if isinstance(value, tuple):
            return count + 16 + int(value[1])
        return int(value)

    tree = b"".join(record(left).to_bytes(3, "big") + record(right).to_bytes(3, "big") for left, right in nodes)
    entries = (
        ("node_count", _uint(count, 6)),
        ("record_size", _uint(24, 5)),
        ("ip_version", _uint(4, 5)),
        ("database_type", encode("GeoLite2-City")),
        ("languages", encode(["en"])),
        ("binary_format_major_version", _uint(2, 5)),
        ("binary_format_minor_version", _uint(0, 5)),
        ("build_epoch", _uint(1_775_000_000, 9)),
        ("description", encode({"en": "Mamori test database"})),
    )
    meta = _control(7, len(entries)) + b"".join(encode(k) + v for k, v in entries)
    path.write_bytes(tree + bytes(16) + data + b"\xab\xcd\xefMaxMind.com" + meta)
