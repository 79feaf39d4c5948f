"""AWS CloudTrail: files of ``{"Records": [...]}`` (plain or gzip, as S3 delivers them), JSON Lines, or
single events. Digest files are not events and are refused by the sniffer.

Fields keep CloudTrail's names, nested ones dotted as SigmaHQ rules write them (``eventName``,
``eventSource``, ``userIdentity.type``, ``userIdentity.arn``, ``requestParameters.attribute``,
``responseElements.ConsoleLogin``, ``additionalEventData.MFAUsed``...); time from ``eventTime``.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from mamori.sources.base import ReadOptions
from mamori.sources.batch import finish_json, json_fields, json_head_has, json_source
from mamori.sources.json_templates import template_fields

SOURCE = "cloudtrail"


EVENT_KEYS = ("eventName", "eventSource", "eventVersion")


def _is_event(value: dict[str, Any]) -> str | None:
    if any(key in value for key in EVENT_KEYS):
        return None
    return "not a CloudTrail event (no eventVersion / eventName / eventSource)"


def parse_cloudtrail(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse CloudTrail records as ``batch.json_parser`` does (time from ``eventTime``, host from
    ``recipientAccountId``). AWS writes the events of one kind alike (same keys, same order, compact):
    a batch of a few kinds is read by their templates (``json_templates``), the same columns and values
    for a fraction of the cost of decoding every record; any other batch is read as before (``json_fields``:
    Arrow's reader for the whole batch, or record by record)."""
    frame = template_fields(texts, _is_event)
    if frame is None:
        frame = json_fields(texts, _is_event, EVENT_KEYS)
    return finish_json(frame, options, ("eventTime",), ("recipientAccountId",), None, "UTC")


def sniff_cloudtrail(head: bytes, name: str) -> bool:
    """Claim CloudTrail files: the ``Records`` envelope or events with ``eventVersion``/``eventSource``."""
    if "CloudTrail-Digest" in name:
        return False
    return json_head_has(head, '"eventVersion"', '"eventSource"', '"awsRegion"', need=2) or (
        "_CloudTrail_" in name and name.endswith((".json", ".json.gz")))


SPECS = [json_source(SOURCE, "AWS CloudTrail (Records files, gzip, JSON Lines)", parse_cloudtrail,
                     sniff_cloudtrail, priority=80)]
