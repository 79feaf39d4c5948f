"""Charts drawn on the server as SVG (no JavaScript chart library): stacked bars over time, horizontal bars
and the ATT&CK tactic/technique heat map. Text is escaped; colours come from the console's level palette."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

LEVEL_COLOURS = {"critical": "#8b1a1a", "high": "#d9480f", "medium": "#e8a317", "low": "#3b7dd8",
                 "informational": "#7a8794"}
LEVEL_ORDER = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Bar:
    """One labelled value of a horizontal bar chart (``href`` makes the label a link)."""

    label: str
    value: int
    colour: str = "#3b6ea5"
    href: str = ""


@dataclass(frozen=True)
class HeatColumn:
    """One tactic of the heat map: its label, its alert count and its techniques with alert counts and names."""

    label: str
    total: int
    cells: tuple[tuple[str, int, str], ...]


def svg_open(width: float, height: float, title: str, css: str = "chart") -> str:
    """The opening ``<svg>`` tag of a chart: its natural size, a class and an accessible title."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" width="{width:g}" '
            f'height="{height:g}" role="img" class="{css}" aria-label="{escape(title)}"><title>{escape(title)}</title>')


def _text(x: float, y: float, text: str, size: int = 11, anchor: str = "start", fill: str = "#333",
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}">{escape(text)}</text>')


def stacked_time_bars(slots: Sequence[str], counts: Mapping[tuple[str, str], int], title: str,
                      width: int = 960, height: int = 200) -> Markup:
    """Alerts per time slot stacked by level (``counts`` keyed by (slot, level)); slot labels under the bars."""
    left, bottom, top = 34, 22, 10
    totals = [sum(counts.get((slot, level), 0) for level in LEVEL_ORDER) for slot in slots]
    peak = max([*totals, 1])
    plot_h = height - bottom - top
    step = (width - left - 6) / max(len(slots), 1)
    parts = [svg_open(width, height, title, "chart")]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 4}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        parts.append(_text(left - 4, y + 4, str(round(peak * fraction)), 10, "end", "#777"))
    for index, slot in enumerate(slots):
        x = left + index * step + step * 0.15
        y = top + plot_h
        for level in LEVEL_ORDER:
            value = counts.get((slot, level), 0)
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                         f'fill="{LEVEL_COLOURS[level]}"><title>{escape(slot)} {escape(level)}: {value}</title></rect>')
        if len(slots) <= 16 or index % max(len(slots) // 8, 1) == 0:
            parts.append(_text(x + step * 0.35, height - 6, slot, 9, "middle", "#666"))
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(bars: Sequence[Bar], title: str, width: int = 440, row: int = 20) -> Markup:
    """A labelled horizontal bar per item, longest value full width; values printed at the bar's end."""
    label_w = 130
    height = max(len(bars), 1) * row + 4
    peak = max([b.value for b in bars] + [1])
    parts = [svg_open(width, height, title, "chart")]
    for index, bar in enumerate(bars):
        y = index * row + 2
        label = bar.label if len(bar.label) <= 20 else bar.label[:19] + "…"
        text = _text(0, y + row * 0.68, label, 11)
        parts.append(f'<a href="{escape(bar.href)}">{text}</a>' if bar.href else text)
        w = (width - label_w - 40) * bar.value / peak
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 7}" rx="2" '
                     f'fill="{bar.colour}"/>')
        parts.append(_text(label_w + w + 4, y + row * 0.68, str(bar.value), 10, fill="#555"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _heat(value: int, peak: int) -> str:
    share = value / peak if peak else 0
    red = int(255 - share * (255 - 178))
    green = int(240 - share * (240 - 34))
    blue = int(230 - share * (230 - 34))
    return f"rgb({red},{green},{blue})"


def attack_heat_map(columns: Sequence[HeatColumn], title: str, room: int = 1080, cell_h: int = 22) -> Markup:
    """The ATT&CK matrix of what fired: one column per tactic, one cell per technique, shaded by alert count;
    columns share ``room`` pixels (between 92 and 140 each)."""
    cell_w = max(92, min(140, room // max(len(columns), 1) - 4))
    label_chars = int(cell_w / 6.2)
    rows = max([len(c.cells) for c in columns] + [1])
    width = max(len(columns), 1) * (cell_w + 4)
    height = 34 + rows * (cell_h + 3)
    peak = max([n for c in columns for _, n, _ in c.cells] + [1])
    parts = [svg_open(width, height, title, "chart heat")]
    for index, column in enumerate(columns):
        x = index * (cell_w + 4)
        parts.append(f'<rect x="{x}" y="0" width="{cell_w}" height="30" fill="#24364b" rx="2"/>')
        label = column.label if len(column.label) <= label_chars else column.label[:label_chars - 1] + "…"
        parts.append(_text(x + cell_w / 2, 13, label, 10, "middle", "#fff", "bold"))
        parts.append(_text(x + cell_w / 2, 26, str(column.total), 9, "middle", "#cfd8e3"))
        for row_index, (technique, count, name) in enumerate(column.cells):
            y = 34 + row_index * (cell_h + 3)
            colour = _heat(count, peak)
            ink = "#fff" if count / peak > 0.55 else "#222"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" fill="{colour}" rx="2">'
                         f'<title>{escape(technique)} {escape(name)}: {count}</title></rect>')
            parts.append(_text(x + 5, y + 15, technique, 10, fill=ink))
            parts.append(_text(x + cell_w - 5, y + 15, str(count), 10, "end", ink, "bold"))
    parts.append("</svg>")
    return Markup("".join(parts))
