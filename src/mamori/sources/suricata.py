"""Suricata EVE JSON (alert, flow, dns, http, tls, fileinfo, stats...): one object per line.

Fields keep EVE's dotted names (``event_type``, ``src_ip``, ``dest_port``, ``alert.signature``,
``dns.rrname``, ``http.hostname``, ``http.url``...); time from ``timestamp``.
"""

from __future__ import annotations

from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "suricata"
parse_suricata = json_parser(("timestamp", "@timestamp"), ("host", "sensor_name"))


def sniff_suricata(head: bytes, name: str) -> bool:
    """Claim EVE JSON: ``event_type`` with ``flow_id`` or ``src_ip``, or a file named ``eve*.json``."""
    return (json_head_has(head, '"event_type"') and json_head_has(head, '"flow_id"', '"src_ip"', '"in_iface"')) or (
        name.startswith("eve") and name.endswith((".json", ".json.gz")))


SPECS = [json_source(SOURCE, "Suricata EVE JSON", parse_suricata, sniff_suricata, priority=70)]
