"""Okta System Log events (the ``/api/v1/logs`` JSON): ``eventType``, ``actor.alternateId``,
``client.ipAddress``, ``outcome.result``, ``debugContext.debugData.*``...; time from ``published``."""

from __future__ import annotations

from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "okta"
parse_okta = json_parser(("published",), ())


def sniff_okta(head: bytes, name: str) -> bool:
    """Claim Okta System Log JSON: ``eventType`` with ``legacyEventType`` or ``displayMessage``."""
    return json_head_has(head, '"eventType"') and json_head_has(head, '"legacyEventType"', '"displayMessage"',
                                                                 '"authenticationContext"')


SPECS = [json_source(SOURCE, "Okta System Log (JSON)", parse_okta, sniff_okta, priority=75)]
