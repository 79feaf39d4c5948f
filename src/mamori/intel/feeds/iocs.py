"""Turn plain IOC values (from lists and MISP attributes) into STIX 2.1 indicators.

Ids are derived from the pattern, so the same IOC from two feeds is one indicator in the store
(with both feeds as its sources) and a feed re-read gives no duplicates.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from mamori.intel.stix_build import stix_id
from mamori.intel.timestamps import normalise_timestamp, now_timestamp
from mamori.intel.tlp import Tlp, marking_for

_HASHES = {32: "MD5", 40: "SHA-1", 64: "SHA-256"}
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{1,62}\.?$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+[^\s]*$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
KNOWN_TYPES = ("ip", "cidr", "domain", "url", "md5", "sha1", "sha256", "hash", "email", "filename")


def refang(value: str) -> str:
    """Undo the usual defanging of IOCs in reports: hxxp, [.] and (.) and [@]."""
    text = value.strip()
    for old, new in (("[.]", "."), ("(.)", "."), ("{.}", "."), ("[@]", "@"), ("[:]", ":")):
        text = text.replace(old, new)
    return re.sub(r"^hxxp", "http", text, flags=re.IGNORECASE)


def guess_type(value: str) -> str | None:
    """The kind of an IOC value (ip, cidr, url, email, md5/sha1/sha256, domain), or None."""
    text = value.strip()
    try:
        ipaddress.ip_address(text)
        return "ip"
    except ValueError:
        pass
    if "/" in text and not text.lower().startswith(("http://", "https://")):
        try:
            ipaddress.ip_network(text, strict=False)
            return "cidr"
        except ValueError:
            pass
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        return "url"
    if _EMAIL.match(text):
        return "email"
    if _HEX.match(text) and len(text) in _HASHES:
        return {32: "md5", 40: "sha1", 64: "sha256"}[len(text)]
    if _DOMAIN.match(text):
        return "domain"
    return None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern_for(value: str, kind: str) -> str | None:
    """The STIX pattern for one IOC value of a kind, or None if the value does not fit the kind."""
    text = value.strip()
    if kind in ("ip", "cidr"):
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None
        stix_type = "ipv4-addr" if network.version == 4 else "ipv6-addr"
        if network.num_addresses == 1:
            return f"[{stix_type}:value = '{network.network_address}']"
        return f"[{stix_type}:value ISSUBSET '{network.with_prefixlen}']"
    if kind in ("md5", "sha1", "sha256", "hash"):
        algo = _HASHES.get(len(text))
        if algo is None or not _HEX.match(text):
            return None
        return f"[file:hashes.'{algo}' = '{text.lower()}']"
    if kind == "domain":
        return f"[domain-name:value = '{_quote(text.lower().rstrip('.'))}']" if _DOMAIN.match(text) else None
    if kind == "url":
        return f"[url:value = '{_quote(text)}']" if _URL.match(text) else None
    if kind == "email":
        return f"[email-addr:value = '{_quote(text.lower())}']" if _EMAIL.match(text) else None
    if kind == "filename":
        return f"[file:name = '{_quote(text)}']" if text else None
    return None


def indicator_for(
    value: str,
    kind: str | None,
    *,
    source: str,
    confidence: int,
    tlp: Tlp,
    first_seen: str | None = None,
    description: str = "",
    labels: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """A STIX indicator for an IOC value (its kind guessed when not given), or None if it is not an IOC."""
    text = refang(value)
    chosen = kind or guess_type(text)
    if chosen is None:
        return None
    pattern = pattern_for(text, chosen)
    if pattern is None:
        return None
    try:
        valid_from = normalise_timestamp(first_seen) if first_seen else now_timestamp()
    except Exception:
        valid_from = now_timestamp()
    stamp = valid_from[:-4] + "Z"
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id("indicator", pattern),
        "created": stamp,
        "modified": stamp,
        "name": f"{chosen} {text}"[:200],
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": stamp,
        "indicator_types": ["malicious-activity"],
        "confidence": confidence,
        "object_marking_refs": [marking_for(tlp)],
        "external_references": [{"source_name": source}],
    }
    if description:
        obj["description"] = description[:2000]
    if labels:
        obj["labels"] = list(labels)
    return obj
