"""Server-side SVG: values from logs are escaped, sizes follow the data, the heat map shades by count."""

from __future__ import annotations

import re

from mamori.web.charts import Bar, HeatColumn, attack_heat_map, horizontal_bars, stacked_time_bars
from mamori.web.graph import MAX_PER_KIND, entity_graph, node_label

HOSTILE = '<script>alert("x")</script>'


def test_labels_from_logs_are_escaped_everywhere() -> None:
    svgs = [horizontal_bars([Bar(HOSTILE, 3, href="/console/alerts?host=<x>")], HOSTILE),
            stacked_time_bars(["11-29"], {("11-29", "high"): 2}, HOSTILE),
            attack_heat_map([HeatColumn(HOSTILE, 2, (("T1059", 2, HOSTILE),))], HOSTILE),
            entity_graph(HOSTILE, {"host": [HOSTILE]}, {"host": HOSTILE}, HOSTILE)]
    for svg in svgs:
        assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_bars_are_as_long_as_their_share_of_the_largest() -> None:
    svg = horizontal_bars([Bar("a", 10), Bar("b", 5)], "t", width=440)
    widths = [float(w) for w in re.findall(r'<rect x="130" y="[\d.]+" width="([\d.]+)"', svg)]
    assert widths[0] == 270.0 and widths[1] == 135.0


def test_stacked_bars_put_each_level_in_its_colour() -> None:
    svg = stacked_time_bars(["a", "b"], {("a", "high"): 1, ("a", "low"): 1, ("b", "critical"): 2}, "t")
    assert svg.count('fill="#d9480f"') == 1 and svg.count('fill="#3b7dd8"') == 1
    assert svg.count('fill="#8b1a1a"') == 1


def test_heat_map_cells_darken_with_the_count() -> None:
    svg = attack_heat_map([HeatColumn("Execution", 9, (("T1059.001", 8, ""), ("T1047", 1, "")))], "t")
    fills = re.findall(r'fill="(rgb\([^)]*\))"', svg)
    assert fills[0] != fills[1]
    assert sum(map(int, re.findall(r"\d+", fills[0]))) < sum(map(int, re.findall(r"\d+", fills[1])))


def test_graph_draws_at_most_a_few_nodes_per_kind_and_says_how_many_more() -> None:
    hosts = [f"host{i}" for i in range(MAX_PER_KIND + 5)]
    svg = entity_graph("#1", {"host": hosts, "user": ["alice"]}, {"host": "Hosts", "user": "Users"}, "g",
                       more=lambda n: f"{n} more")
    assert svg.count('data-kind="host"') == MAX_PER_KIND and svg.count('data-kind="user"') == 1
    assert "5 more" in svg


def test_multi_hash_values_are_labelled_by_their_sha256() -> None:
    value = "SHA1=aa,MD5=bb,SHA256=0123456789abcdef0123456789abcdef,IMPHASH=cc".lower()
    assert node_label("file_hash", value).startswith("sha256:0123456789")
    assert len(node_label("host", "x" * 100)) == 26
