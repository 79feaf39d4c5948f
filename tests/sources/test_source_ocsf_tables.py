"""OCSF normalisation is data: the tables load, name real sources, follow their rules in order, and
never overwrite an event's own fields."""

from __future__ import annotations

from importlib import resources

import polars as pl
import pytest

from mamori.errors import MamoriError
from mamori.events.logsources import builtin_table
from mamori.events.ocsf import builtin_tables, normalise, parse_table
from mamori.sources.registry import all_sources

TABLE = """
source: demo
defaults: {class_uid: 0, category_uid: 0, activity_id: 0}
classes:
  - when: {kind: [login]}
    set: {class_uid: 3002, category_uid: 3, activity_id: 1}
  - match: {kind: "^log"}
    set: {class_uid: 1, category_uid: 1, activity_id: 2}
statuses:
  - when: {ok: ["yes"]}
    set: {status_id: 1}
fields:
  src_endpoint.ip: [ip, addr]
  time: when
extract:
  user.name: {from: msg, regex: "user=(\\\\w+)"}
lookups:
  severity_id: {from: level, values: {low: 1, high: 4}, default: 0}
constants: {metadata.product.name: Demo}
"""


def test_rules_apply_in_order_and_ids_make_type_uid() -> None:
    frame = pl.DataFrame({"_time": [None, None, None], "kind": ["login", "logout", "other"],
                          "ok": ["yes", "no", None], "ip": [None, "1.1.1.1", None],
                          "addr": ["2.2.2.2", "3.3.3.3", None],
                          "msg": ["user=ann", "", None], "level": ["HIGH", "x", None]},
                         schema_overrides={"_time": pl.Datetime("ns", "UTC")})
    out = normalise(frame, "demo", {"demo": parse_table(TABLE, "demo.yaml")})
    assert out["class_uid"].to_list() == ["3002", "1", "0"]
    assert out["type_uid"].to_list() == ["300201", "102", "0"]
    assert out["status_id"].to_list() == ["1", None, None]
    assert out["src_endpoint.ip"].to_list() == ["2.2.2.2", "1.1.1.1", None]
    assert out["user.name"].to_list() == ["ann", None, None]
    assert out["severity_id"].to_list() == ["4", "0", "0"]
    assert out["metadata.product.name"].to_list() == ["Demo"] * 3


def test_an_events_own_ocsf_named_field_is_kept() -> None:
    frame = pl.DataFrame({"_time": [None], "kind": ["login"], "class_uid": ["9999"], "time": ["orig"]},
                         schema_overrides={"_time": pl.Datetime("ns", "UTC")})
    out = normalise(frame, "demo", {"demo": parse_table(TABLE, "demo.yaml")})
    assert out["class_uid"].to_list() == ["9999"]
    assert out["time"].to_list() == ["orig"]


def test_a_broken_table_names_its_file() -> None:
    with pytest.raises(MamoriError, match=r"bad\.yaml.*classes\[0\]"):
        parse_table("source: x\nclasses:\n  - when: {a: [b]}\n", "bad.yaml")


def test_every_shipped_table_and_mapping_names_a_known_source() -> None:
    sources = set(all_sources())
    assert set(builtin_tables()) <= sources
    mapped = {s for e in builtin_table().entries for s in e.sources}
    assert mapped <= sources
    names = {p.name for p in (resources.files("mamori.events") / "ocsf").iterdir()}
    assert all(n.endswith(".yaml") for n in names)


def test_every_source_of_mine_has_an_ocsf_table() -> None:
    mine = set(all_sources()) - {"evtx", "winjson", "ocsf"}
    assert mine <= set(builtin_tables()), sorted(mine - set(builtin_tables()))
