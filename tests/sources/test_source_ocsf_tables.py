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
    mine = set(all_sources()) - {"ocsf"}
    assert mine <= set(builtin_tables()), sorted(mine - set(builtin_tables()))


SHARED = """
source: [one, two]
defaults: {class_uid: 0, category_uid: 0, activity_id: 0}
blanks: ["-"]
classes:
  - when: {EventID: ["1"], Channel: [A], Kind: [special]}
    set: {class_uid: 10, category_uid: 1, activity_id: 9}
  - when: {EventID: ["1"], Channel: [A]}
    set: {class_uid: 10, category_uid: 1, activity_id: 1, proto: Kerberos}
    fields: {user.name: Member, group.name: Target}
  - when: {EventID: ["2"], Channel: [A, B]}
    set: {class_uid: 20, category_uid: 2, activity_id: 2}
fields:
  user.name: Target
  src.ip: [Ip, Addr]
  proto: Package
"""


def _shared_frame() -> pl.DataFrame:
    return pl.DataFrame({
        "EventID": ["1", "1", "1", "2", "2", "2", None],
        "Channel": ["A", "A", "B", "B", "C", "A", "A"],
        "Kind": ["special", None, None, None, None, None, None],
        "Member": ["m0", None, "m2", None, None, None, None],
        "Target": ["grp", "grp", "t2", "t3", "t4", "-", "t6"],
        "Ip": ["-", None, "1.1.1.1", None, None, None, None],
        "Addr": ["2.2.2.2", None, None, None, None, None, None],
        "Package": [None, "NTLM", None, None, None, None, None],
    })


def test_a_table_can_serve_several_sources() -> None:
    table = parse_table(SHARED, "shared.yaml")
    assert (table.source, table.sources) == ("one", ("one", "two"))
    frame = _shared_frame()
    one = normalise(frame, "one", {"one": table, "two": table})
    two = normalise(frame, "two", {"one": table, "two": table})
    assert one.equals(two)


def test_the_first_rule_that_holds_wins_across_column_sets_and_rule_fields_stay_with_their_rule() -> None:
    out = normalise(_shared_frame(), "one", {"one": parse_table(SHARED, "shared.yaml")})
    assert out["class_uid"].to_list() == ["10", "10", "0", "20", "0", "20", "0"]
    assert out["activity_id"].to_list() == ["9", "1", "0", "2", "0", "2", "0"]
    # the rule naming user.name takes it from its own column, even when that is empty (row 1)
    assert out["user.name"].to_list() == ["grp", None, "t2", "t3", "t4", None, "t6"]
    assert out["group.name"].to_list() == [None, "grp", None, None, None, None, None]
    # a dash is no value: the next column is tried
    assert out["src.ip"].to_list() == ["2.2.2.2", None, "1.1.1.1", None, None, None, None]
    # the event's own value wins over the one its rule sets; the rule's fills the gaps
    assert out["proto"].to_list() == [None, "NTLM", None, None, None, None, None]


def test_rule_values_fill_a_field_the_event_leaves_empty() -> None:
    frame = _shared_frame().with_columns(pl.lit(None, dtype=pl.Utf8).alias("Package"))
    out = normalise(frame, "one", {"one": parse_table(SHARED, "shared.yaml")})
    assert out["proto"].to_list() == [None, "Kerberos", None, None, None, None, None]


def test_rules_give_the_same_result_as_lookups_or_as_conditions() -> None:
    """Exact-value rules on text columns run as hash lookups; on other column types as conditions."""
    table = parse_table(SHARED, "shared.yaml")
    frame = _shared_frame()
    as_lookups = normalise(frame, "one", {"one": table})
    categorical = frame.with_columns(pl.col("EventID", "Channel", "Kind").cast(pl.Categorical))
    as_conditions = normalise(categorical, "one", {"one": table})
    ocsf = [c for c in as_lookups.columns if c not in frame.columns]
    assert as_lookups.select(ocsf).equals(as_conditions.select(ocsf))


def test_a_rule_needs_set_or_fields() -> None:
    with pytest.raises(MamoriError, match=r"x\.yaml.*classes\[0\].*'set' or 'fields'"):
        parse_table("source: x\nclasses:\n  - when: {a: [b]}\n", "x.yaml")
