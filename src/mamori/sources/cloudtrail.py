"""AWS CloudTrail: files of ``{"Records": [...]}`` (plain or gzip, as S3 delivers them), JSON Lines, or
single events. Digest files are not events and are refused by the sniffer.

Fields keep CloudTrail's names, nested ones dotted as SigmaHQ rules write them (``eventName``,
``eventSource``, ``userIdentity.type``, ``userIdentity.arn``, ``requestParameters.attribute``,
``responseElements.ConsoleLogin``, ``additionalEventData.MFAUsed``...); time from ``eventTime``.
"""

from __future__ import annotations

from typing import Any

from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "cloudtrail"


EVENT_KEYS = ("eventName", "eventSource", "eventVersion")


def _is_event(value: dict[str, Any]) -> str | None:
    if any(key in value for key in EVENT_KEYS):
        return None
    return "not a CloudTrail event (no eventVersion / eventName / eventSource)"


parse_cloudtrail = json_parser(("eventTime",), ("recipientAccountId",), accept=_is_event, accept_any=EVENT_KEYS)


def sniff_cloudtrail(head: bytes, name: str) -> bool:
    """Claim CloudTrail files: the ``Records`` envelope or events with ``eventVersion``/``eventSource``."""
    if "CloudTrail-Digest" in name:
        return False
    return json_head_has(head, '"eventVersion"', '"eventSource"', '"awsRegion"', need=2) or (
        "_CloudTrail_" in name and name.endswith((".json", ".json.gz")))


SPECS = [json_source(SOURCE, "AWS CloudTrail (Records files, gzip, JSON Lines)", parse_cloudtrail,
                     sniff_cloudtrail, priority=80)]
