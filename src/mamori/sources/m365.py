"""Microsoft 365: the unified audit log (Management Activity API / Purview export: ``CreationTime``,
``Operation``, ``Workload``, ``UserId``, ``ClientIP``...) and Microsoft Defender XDR streaming events
(``category: AdvancedHunting-*`` with ``properties``).

Fields keep their names dotted; ``ExtendedProperties`` / ``Parameters`` name-value lists also appear
as ``ExtendedProperties.<Name>`` / ``Parameters.<Name>`` so rules and analysts can reach them.
``m365_log`` is ``audit`` or ``defender``; ``m365_result`` is ``success``/``failure`` from ``ResultStatus``
(an alert record counts as success), the value SigmaHQ's m365 rules compare ``status`` with. Times
without a zone (``CreationTime``) are UTC, as Microsoft documents.
"""

from __future__ import annotations

import orjson
import polars as pl

from mamori.sources.base import ReadOptions
from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "m365"
LISTS = ("ExtendedProperties", "Parameters", "ModifiedProperties", "DeviceProperties")


def _name_values(frame: pl.DataFrame, options: ReadOptions) -> pl.DataFrame:
    new: dict[str, list[str | None]] = {}
    n = frame.height
    for column in LISTS:
        if column not in frame.columns:
            continue
        for row, text in enumerate(frame[column].to_list()):
            if not text or not text.startswith("["):
                continue
            try:
                items = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            for item in items:
                if isinstance(item, dict) and "Name" in item:
                    value = item.get("Value", item.get("NewValue"))
                    name = f"{column}.{item['Name']}"
                    new.setdefault(name, [None] * n)[row] = value if isinstance(value, str) or value is None \
                        else orjson.dumps(value).decode()
    if new:
        frame = frame.with_columns([pl.Series(k, v, dtype=pl.Utf8) for k, v in new.items() if k not in frame.columns])
    return _kind(frame)


def _kind(frame: pl.DataFrame) -> pl.DataFrame:
    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in frame.columns else pl.lit(None, dtype=pl.Utf8)

    log = (pl.when(col("category").str.starts_with("AdvancedHunting-")).then(pl.lit("defender"))
           .when(col("Workload").is_not_null() | col("RecordType").is_not_null()).then(pl.lit("audit"))
           .otherwise(None))
    status = col("ResultStatus").str.to_lowercase()
    result = (pl.when(status.is_in(["succeeded", "success", "true", "partiallysucceeded"])).then(pl.lit("success"))
              .when(status.is_in(["failed", "failure", "false"])).then(pl.lit("failure"))
              .when(col("Operation").is_in(["AlertTriggered", "AlertEntityGenerated"])).then(pl.lit("success"))
              .otherwise(None))
    return frame.with_columns(log.alias("m365_log"), result.alias("m365_result"))


parse_m365 = json_parser(("CreationTime", "time", "properties.Timestamp", "Timestamp"), ("properties.DeviceName",),
                         extra=_name_values)


def sniff_m365(head: bytes, name: str) -> bool:
    """Claim unified audit records (``CreationTime`` + ``Operation`` + ``Workload``) and Defender streaming."""
    return json_head_has(head, '"CreationTime"', '"Operation"', '"Workload"', need=2) or json_head_has(
        head, '"AdvancedHunting-')


SPECS = [json_source(SOURCE, "Microsoft 365 unified audit log and Defender XDR streaming (JSON)", parse_m365,
                     sniff_m365, priority=75)]
