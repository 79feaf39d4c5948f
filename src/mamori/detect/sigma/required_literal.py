"""The text a regular expression cannot match without: its longest run of mandatory literal characters.

A rule's regular expression (``|re``) or wildcard pattern is costly to run; most of them name a
fixed piece of text every match contains (``\\Windows\\System32\\``, ``-destinationpath``). The
engine looks that piece up in the field's literal index first, and runs the expression only on the
values holding it, or not at all when no value does. The run is lower-cased and compared with
lower-cased values, which makes it a necessary condition for case-sensitive and case-insensitive
expressions alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from mamori.detect.sigma.plan import GLOB, REGEX

try:  # Python's own regular-expression parser; the module was renamed in 3.11
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

MIN_LENGTH = 3  # shorter runs occur almost everywhere: no use as a filter

_ZERO_WIDTH = {_sre.AT}


@lru_cache(maxsize=4096)
def required_literal(pattern: str) -> str | None:
    """The longest lower-cased ASCII text every match of ``pattern`` contains (at least
    ``MIN_LENGTH`` characters), or None when there is none or the pattern is beyond Python's parser."""
    try:
        parsed = _sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    best = ""
    for run in _runs(list(parsed)):
        if len(run) > len(best):
            best = run
    best = best.lower()
    if len(best) < MIN_LENGTH or not best.isascii():
        return None
    return best


def _runs(items: list[tuple[Any, Any]]) -> list[str]:
    """The runs of consecutive mandatory literal characters in a parsed sequence."""
    runs: list[str] = []
    current: list[str] = []
    for op, _argument in _flatten(items):
        if op is _sre.LITERAL:
            current.append(chr(_argument))
        elif op in _ZERO_WIDTH:
            continue  # anchors and word boundaries consume nothing
        elif current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs


def _flatten(items: Any) -> Iterator[tuple[Any, Any]]:
    """A sequence with its plain groups opened: a group without alternatives matches exactly its items."""
    for op, argument in items:
        if op is _sre.SUBPATTERN and not any(inner is _sre.BRANCH for inner, _ in argument[-1]):
            yield from _flatten(argument[-1])
        else:
            yield op, argument


def test_literal(kind: str, argument: Any) -> str | None:
    """The required literal of a regular-expression or wildcard test (``plan.REGEX`` / ``plan.GLOB``)."""
    if kind == REGEX:
        return required_literal(str(argument[0]))
    if kind == GLOB:
        return required_literal(str(argument))
    return None
