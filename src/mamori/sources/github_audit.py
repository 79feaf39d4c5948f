"""GitHub organisation / enterprise audit log (JSON export or streaming): ``action``, ``actor``,
``org``, ``repo``, ``user``...; time from ``@timestamp`` or ``created_at`` (epoch milliseconds)."""

from __future__ import annotations

from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "github_audit"
parse_github = json_parser(("@timestamp", "created_at", "timestamp"), ())


def sniff_github(head: bytes, name: str) -> bool:
    """Claim GitHub audit entries: ``action`` with ``actor`` and ``org`` or ``_document_id``."""
    return json_head_has(head, '"action"') and json_head_has(head, '"actor"') and json_head_has(
        head, '"_document_id"', '"org"', '"business"')


SPECS = [json_source(SOURCE, "GitHub audit log (JSON)", parse_github, sniff_github, priority=70)]
