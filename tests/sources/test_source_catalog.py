"""``mamori sources`` lists every reader with the products it reads, its OCSF table and the Sigma log
sources its events serve; the product catalogue names only real readers."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mamori.sources.catalog import LOGHUB, PRODUCTS
from mamori.sources.cli import source_rows, sources
from mamori.sources.registry import all_sources


def test_every_catalogued_product_names_a_registered_source() -> None:
    known = set(all_sources())
    assert set(PRODUCTS.values()) <= known
    assert set(LOGHUB.values()) <= known


def test_sources_rows_show_products_ocsf_and_sigma_logsources() -> None:
    rows = {r["name"]: r for r in source_rows()}
    assert rows["cloudtrail"]["products"] == ["aws-cloudtrail"]
    assert rows["cloudtrail"]["ocsf"] == "mamori/events/ocsf/cloudtrail.yaml"
    assert rows["cloudtrail"]["sigma_logsources"] == ["aws/-/cloudtrail"]
    assert "linux/process_creation/-" in rows["auditd"]["sigma_logsources"]  # type: ignore[operator]
    assert "-/proxy/-" in rows["squid"]["sigma_logsources"]  # type: ignore[operator]


def test_sources_command_prints_json_for_one_source() -> None:
    result = CliRunner().invoke(sources, ["--json", "--name", "zeek"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["name"] == "zeek" and "zeek/-/dns" in row["sigma_logsources"]


def test_sources_command_refuses_an_unknown_name() -> None:
    result = CliRunner().invoke(sources, ["--name", "nope"])
    assert result.exit_code == 2 and "unknown source" in result.output
