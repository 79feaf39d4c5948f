"""Bar 1 on real data: every raw message of ../shared/data/raw-logs for a product Mamori reads, and
every line of the loghub files, is read with its raw text kept; none is quarantined; and the readers
fill the normalised fields the messages carry."""

from __future__ import annotations

import json

import polars as pl
import pytest
from mamori_testing import shared_data

from mamori.sources.base import ReadOptions
from mamori.sources.batch import PARSERS, parse_records
from mamori.sources.catalog import LOGHUB, PRODUCTS
from mamori.sources.registry import all_sources, sniff_source

MINE = {p: s for p, s in PRODUCTS.items() if s != "winjson"}


def _messages(product: str) -> list[str]:
    path = shared_data("raw-logs", f"{product}.jsonl")
    return [json.loads(line)["message"] for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("product", sorted(MINE))
def test_every_real_message_of_a_product_is_read_with_its_raw_text(product: str) -> None:
    all_sources()
    messages = _messages(product)
    result = parse_records(messages, PARSERS[MINE[product]], source=MINE[product], origin=product)
    assert [p.reason for p in result.problems] == []
    assert result.frame.height == len(messages)
    assert result.frame["_raw"].to_list() == messages
    assert result.frame["_uid"].n_unique() == len(messages)


@pytest.mark.parametrize(("product", "field", "share"), [
    ("aws-cloudtrail", "api.operation", 0.9),
    ("o365", "actor.user.name", 0.9),
    ("okta", "src_endpoint.ip", 0.9),
    ("gcp-audit", "api.operation", 0.9),
    ("fortigate", "_time", 0.9),
    ("paloalto-ngfw", "_time", 1.0),
    ("checkpoint", "src_endpoint.ip", 0.8),
    ("squid", "http_request.url.url_string", 1.0),
    ("apache", "src_endpoint.ip", 0.9),
    ("suricata", "_time", 1.0),
    ("kubernetes-audit", "api.operation", 1.0),
    ("entra-id-graph", "class_uid", 1.0),
])
def test_real_messages_get_their_normalised_fields(product: str, field: str, share: float) -> None:
    all_sources()
    messages = _messages(product)
    frame = parse_records(messages, PARSERS[MINE[product]], source=MINE[product]).frame
    filled = frame.select(pl.col(field).is_not_null().sum()).item()
    assert filled >= share * len(messages), f"{field} filled on {filled} of {len(messages)}"


@pytest.mark.parametrize("name", sorted(LOGHUB))
def test_loghub_files_are_detected_and_read_completely(name: str) -> None:
    path = shared_data("loghub", name)
    spec = sniff_source(path)
    assert spec is not None and spec.name == LOGHUB[name]
    results = list(spec.read(path, ReadOptions(default_year=2024)))
    frame = pl.concat([r.frame for r in results], how="diagonal_relaxed")
    lines = [line for line in path.read_text("utf-8", errors="replace").splitlines() if line.strip()]
    assert sum(len(r.problems) for r in results) == 0
    assert frame.height == len(lines)
    assert frame["_time"].null_count() == 0
    assert frame.sort("_offset")["_raw"].to_list() == lines


def test_openssh_brute_force_lines_become_failed_authentications() -> None:
    path = shared_data("loghub", "OpenSSH_2k.log")
    frame = pl.concat([r.frame for r in all_sources()["syslog"].read(path, ReadOptions(default_year=2024))],
                      how="diagonal_relaxed")
    failed = frame.filter((pl.col("class_uid") == "3002") & (pl.col("status_id") == "2"))
    assert failed.height > 300
    assert failed["src_endpoint.ip"].null_count() < failed.height * 0.05
    assert "183.62.140.253" in failed["src_endpoint.ip"].to_list()
