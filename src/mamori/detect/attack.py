"""ATT&CK tags: which tactics and techniques a rule's Sigma tags name (table in data/attack_tactics.yaml)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import yaml

LEVELS = ("informational", "low", "medium", "high", "critical")
_TECHNIQUE = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Tactic:
    """An ATT&CK tactic: its id, the Sigma tag and its names in English and Japanese."""

    id: str
    tag: str
    en: str
    ja: str


@functools.cache
def tactics() -> tuple[Tactic, ...]:
    """All tactics in kill-chain order."""
    text = (resources.files("mamori.detect") / "data" / "attack_tactics.yaml").read_text("utf-8")
    # libyaml when there: every hunt process reads this table, and the pure-Python parser takes 12 ms
    return tuple(Tactic(**row) for row in yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def tactics_of(tags: tuple[str, ...] | list[str]) -> list[Tactic]:
    """The tactics a rule's tags name (``attack.credential_access`` or ``attack.credential-access``)."""
    by_tag = {t.tag: t for t in tactics()}
    out = []
    for tag in tags:
        if tag.startswith("attack."):
            tactic = by_tag.get(tag[7:].replace("-", "_"))
            if tactic and tactic not in out:
                out.append(tactic)
    return out


def techniques_of(tags: tuple[str, ...] | list[str]) -> list[str]:
    """The technique ids a rule's tags name (``attack.t1059.001`` -> ``T1059.001``)."""
    return [m.group(1).upper() for t in tags if (m := _TECHNIQUE.match(t))]


def level_rank(level: str) -> int:
    """Order of a Sigma level (unknown levels rank as medium)."""
    return LEVELS.index(level) if level in LEVELS else 2
