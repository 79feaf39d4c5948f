"""Say why a rule matched: the selections that held (computed in bulk by the engine, from the test
results the batch already had, as capa returns *why*) and the fields they tested, with the values."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

import orjson

from mamori.detect.sigma.model import CLASS, LIT, ONE, STAR, RegexValue, Rule, StrPattern


def selection_fields(rule: Rule, selections: Sequence[str]) -> list[str]:
    """The fields the given selections of a rule test, in rule order."""
    wanted = set(selections)
    out: dict[str, None] = {}
    for selection in rule.selections:
        if selection.name in wanted:
            for item_map in selection.maps:
                for item in item_map:
                    if item.field:
                        out.setdefault(item.field, None)
    return list(out)


def explanation_text(rule: Rule, selections: Sequence[str], values: Mapping[str, object],
                     keywords: Sequence[str] = ()) -> str:
    """A sentence an analyst reads: ``selection_img, selection_cli matched: Image='...', ...`` (and the
    keywords found, for keyword selections, which name no field)."""
    shown = [f"{f}={values.get(f)!r}" for f in selection_fields(rule, selections) if f in values]
    shown += [f"keyword {k!r}" for k in keywords]
    return f"{', '.join(selections) or 'condition'} matched" + (f": {', '.join(shown)}" if shown else "")


def has_keywords(rule: Rule) -> bool:
    """Whether the rule has keyword (field-less) values."""
    return any(item.field is None for selection in rule.selections for item_map in selection.maps
               for item in item_map)


def keywords_found(rule: Rule, selections: Sequence[str] | None, text: str) -> list[str]:
    """The keywords of the rule's selections (those given, else all) that occur in ``text`` (the event's
    raw record), as the rule writes them: a keyword hit names no field, so this is what tells an analyst
    what the rule saw."""
    wanted = None if selections is None else set(selections)
    found: dict[str, None] = {}
    for selection in rule.selections:
        if wanted is not None and selection.name not in wanted:
            continue
        for item_map in selection.maps:
            for item in item_map:
                if item.field is not None:
                    continue
                for alternative in item.alternatives:
                    for value in alternative:
                        if isinstance(value, StrPattern | RegexValue) and _search(value).search(text):
                            found.setdefault(_written(value), None)
    return list(found)


@functools.lru_cache(maxsize=4096)
def _search(value: StrPattern | RegexValue) -> re.Pattern[str]:
    """A Python pattern finding the value anywhere in a text (keywords match as ``contains``)."""
    if isinstance(value, RegexValue):
        flags = (re.IGNORECASE if value.ignore_case else 0) | (re.MULTILINE if value.multiline else 0) | (
            re.DOTALL if value.dotall else 0)
        return re.compile(value.pattern, flags)
    body = "".join(_token(kind, text) for kind, text in value.tokens)
    return re.compile(body, re.DOTALL | (0 if value.cased else re.IGNORECASE))


def _token(kind: str, text: str) -> str:
    """One wildcard token as Python regex, a literal also in its JSON spelling (a raw JSON record writes
    ``C:\\Windows`` for ``C:\\Windows``, which the engine's keyword test finds too)."""
    if kind == STAR:
        return ".*"
    if kind == ONE:
        return "."
    if kind == CLASS:
        return "[" + "".join(re.escape(c) for c in text) + "]"
    json_spelling = orjson.dumps(text).decode()[1:-1]
    if json_spelling == text:
        return re.escape(text)
    return f"(?:{re.escape(text)}|{re.escape(json_spelling)})"


def _written(value: StrPattern | RegexValue) -> str:
    """The value as a rule writes it (the ``*`` keywords are wrapped in left out)."""
    if isinstance(value, RegexValue):
        return value.pattern
    tokens = list(value.tokens)
    while tokens and tokens[0][0] == STAR:
        tokens.pop(0)
    while tokens and tokens[-1][0] == STAR:
        tokens.pop()
    return "".join(text.replace("*", "\\*").replace("?", "\\?") if kind == LIT else text for kind, text in tokens)
