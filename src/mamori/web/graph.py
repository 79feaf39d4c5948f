"""The entity graph of an incident as server-side SVG: the incident in the middle, its hosts, users, IPs,
processes and hashes around it, one colour per kind, an edge from the incident to each."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

from mamori.web.charts import svg_open

KIND_COLOURS = {"host": "#2f6f9f", "user": "#7b4fa0", "ip": "#2e8b57", "process": "#b5651d",
                "process_tree": "#c0772a", "file_hash": "#8a6d3b", "domain": "#a0306b"}
MAX_PER_KIND = 8
LABEL_CHARS = 26
PAD = 180  # room left and right of the circle for labels


def text_width(text: str, size: int = 11) -> float:
    """About how wide ``text`` is drawn at ``size`` px: CJK characters are square, Latin ones about half."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text)


def node_label(kind: str, value: str) -> str:
    """A short label for a node: the SHA-256 of a multi-hash value, else the value cut at ``LABEL_CHARS``."""
    if kind == "file_hash" and "=" in value:
        parts = dict(part.partition("=")[::2] for part in value.split(","))
        name = "sha256" if "sha256" in parts else next(iter(parts))
        value = f"{name}:{parts[name]}"
    return value if len(value) <= LABEL_CHARS else value[:LABEL_CHARS - 1] + "…"


def entity_graph(center: str, entities: Mapping[str, Sequence[str]], kind_labels: Mapping[str, str],
                 title: str, more: Callable[[int], str] = lambda n: f"+{n}", size: int = 480) -> Markup:
    """Nodes on a circle around the incident, grouped by kind (at most ``MAX_PER_KIND`` per kind; ``more``
    says how many were left out), with a legend of the kinds shown."""
    nodes: list[tuple[str, str]] = []
    hidden = 0
    for kind, values in entities.items():
        unique = list(dict.fromkeys(str(v) for v in values if v))
        nodes += [(kind, value) for value in unique[:MAX_PER_KIND]]
        hidden += max(len(unique) - MAX_PER_KIND, 0)
    width = size + 2 * PAD
    cx, cy = width / 2, size / 2
    radius = size / 2 - 40
    parts = [svg_open(width, size + 44, title, "chart graph")]
    positions = []
    for index, _ in enumerate(nodes):
        angle = 2 * math.pi * index / max(len(nodes), 1) - math.pi / 2
        positions.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    for x, y in positions:
        parts.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#b8c2cc"/>')
    for (kind, value), (x, y) in zip(nodes, positions, strict=True):
        colour = KIND_COLOURS.get(kind, "#555")
        anchor = "start" if x > cx + 5 else "end" if x < cx - 5 else "middle"
        dx = 12 if anchor == "start" else -12 if anchor == "end" else 0
        dy = 4 if anchor != "middle" else (-14 if y < cy else 24)
        parts.append(f'<g class="node" data-kind="{escape(kind)}"><circle cx="{x:.1f}" cy="{y:.1f}" r="9" '
                     f'fill="{colour}"><title>{escape(kind_labels.get(kind, kind))}: {escape(value)}</title>'
                     f'</circle><text x="{x + dx:.1f}" y="{y + dy:.1f}" font-size="11" text-anchor="{anchor}" '
                     f'fill="#222">{escape(node_label(kind, value))}</text></g>')
    parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="30" fill="#24364b"/>')
    parts.append(f'<text x="{cx:.1f}" y="{cy + 4:.1f}" font-size="12" text-anchor="middle" fill="#fff" '
                 f'font-weight="bold">{escape(center)}</text>')
    x = float(PAD)
    legend_y = size + 14
    for kind in dict.fromkeys(k for k, _ in nodes):
        text = kind_labels.get(kind, kind)
        parts.append(f'<circle cx="{x + 5:.1f}" cy="{legend_y}" r="5" fill="{KIND_COLOURS.get(kind, "#555")}"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{legend_y + 4}" font-size="11" fill="#333">{escape(text)}</text>')
        x += 24 + text_width(text)
    if hidden:
        parts.append(f'<text x="{PAD}" y="{legend_y + 22}" font-size="11" fill="#777">'
                     f'{escape(more(hidden))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
