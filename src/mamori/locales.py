"""The languages Mamori speaks and how a room's translation catalogue is read.

Each room that shows text (console, reports, the cases room's messages) keeps its own
``locales/{ja,en}.yaml`` beside its code; this module is the one reader of those files, so every
catalogue nests and flattens the same way (``sections.timeline``).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

LANGUAGES = ("ja", "en")
DEFAULT_TIME_ZONES = {"ja": "Asia/Tokyo", "en": "UTC"}


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = str(value)


@functools.cache
def read_catalogue(package: str, language: str) -> dict[str, str]:
    """Every string of ``package``'s ``locales/<language>.yaml``, by dotted key (read once per process)."""
    text = (resources.files(package) / "locales" / f"{language}.yaml").read_text("utf-8")
    out: dict[str, str] = {}
    _flatten("", yaml.safe_load(text) or {}, out)
    return out
