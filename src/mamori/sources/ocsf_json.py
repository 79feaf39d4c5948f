"""Events already in OCSF JSON (from Amazon Security Lake, other SIEMs or converters): the OCSF
attributes flattened to dotted names (``class_uid``, ``actor.user.name``, ``src_endpoint.ip``...);
time from ``time`` (epoch milliseconds)."""

from __future__ import annotations

from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "ocsf"
parse_ocsf = json_parser(("time", "start_time"), ("device.hostname", "device.name"))


def sniff_ocsf(head: bytes, name: str) -> bool:
    """Claim OCSF JSON: ``class_uid`` with ``category_uid`` or ``type_uid``."""
    return json_head_has(head, '"class_uid"') and json_head_has(head, '"category_uid"', '"type_uid"', '"metadata"')


SPECS = [json_source(SOURCE, "OCSF events as JSON", parse_ocsf, sniff_ocsf, priority=60)]
