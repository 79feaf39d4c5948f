"""Peer groups computed from behaviour: alike users and hosts grouped deterministically, items
everyone shows left out, and the groups named by what their members share."""

from __future__ import annotations

import polars as pl

from mamori.detect.anomaly.peers import cluster, distinctive


def _items(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"entity": pl.Utf8, "item": pl.Utf8, "count": pl.UInt32}, orient="row")


ROWS = [
    *[(f"sales{i}", item, 20) for i in range(5) for item in ("host:crm01", "host:mail01", "host:dc01")],
    *[(f"dev{i}", item, 20) for i in range(5) for item in ("host:git01", "host:ci01", "host:dc01")],
    ("dev0", "host:crm01", 1),  # one look at the CRM does not make a developer a salesman
    ("loner", "host:lab01", 9),
    ("loner", "host:dc01", 9),
]


def test_alike_entities_share_a_group_and_strays_get_none() -> None:
    groups = cluster(distinctive(_items(ROWS)))
    assert {groups[f"sales{i}"] for i in range(5)} == {groups["sales0"]}
    assert {groups[f"dev{i}"] for i in range(5)} == {groups["dev0"]}
    assert groups["sales0"] != groups["dev0"]
    assert "loner" not in groups  # a group of one is no peer group


def test_the_groups_do_not_depend_on_row_order() -> None:
    items = _items(ROWS)
    assert cluster(items) == cluster(items.sample(fraction=1.0, shuffle=True, seed=3))


def test_items_nearly_everyone_shows_are_left_out() -> None:
    kept = distinctive(_items(ROWS)).get_column("item").unique().to_list()
    assert "host:dc01" not in kept and "host:crm01" in kept
