"""Turn a Sigma value and its modifiers into matchable values (wildcards, encodings, windash, ...).

Sigma applies modifiers left to right: ``|wide|base64offset|contains`` encodes the text as UTF-16LE,
then takes its three base64 offsets, then looks for each anywhere in the field.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mamori.detect.sigma.model import (
    CLASS,
    LIT,
    ONE,
    STAR,
    CidrValue,
    ExistsValue,
    FieldRefValue,
    NullValue,
    NumberValue,
    RegexValue,
    StrPattern,
    TimePartValue,
    Value,
)

TRANSFORMS = {"base64", "base64offset", "wide", "utf16le", "utf16be", "utf16", "windash"}
POSITION = {"contains", "startswith", "endswith"}
REGEX_FLAGS = {"i", "m", "s", "ignorecase", "multiline", "dotall"}
NUMERIC = {"gt", "gte", "lt", "lte"}
# time modifiers (modifiers appendix 2.1.0): the part of a date-time value, and the numbers it can be
# (ISO weeks run to 53; the appendix says 52, but a year that starts on a Thursday has 53)
TIME_PARTS = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "week": (1, 53), "month": (1, 12),
              "year": (None, None)}
KNOWN = TRANSFORMS | POSITION | REGEX_FLAGS | NUMERIC | set(TIME_PARTS) | {
    "all", "re", "cidr", "exists", "expand", "fieldref", "cased", "neq"}
WINDASH_CHARS = "-/\u2013\u2014\u2015"
WINDASH_MAX_VARIANTS = 32
_WINDASH_AT = re.compile(r"\B[-/]\b")


class ValueError_(Exception):
    """A value that cannot be used with its modifiers; the message says which and why."""


def parse_wildcards(text: str) -> list[tuple[str, str]]:
    """Split a Sigma string into literal runs and ``*`` / ``?`` wildcards, honouring ``\\`` escapes."""
    if "*" not in text and "?" not in text and "\\" not in text:
        return [(LIT, text)] if text else []
    tokens: list[tuple[str, str]] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "*?\\":
            literal.append(text[i + 1])
            i += 2
            continue
        if ch in "*?":
            if literal:
                tokens.append((LIT, "".join(literal)))
                literal = []
            kind = STAR if ch == "*" else ONE
            if not (kind == STAR and tokens and tokens[-1][0] == STAR):
                tokens.append((kind, ch))
            i += 1
            continue
        literal.append(ch)
        i += 1
    if literal:
        tokens.append((LIT, "".join(literal)))
    return tokens


def _plain_text(tokens: list[tuple[str, str]], modifier: str) -> str:
    if any(kind != LIT for kind, _ in tokens):
        raise ValueError_(f"the {modifier} modifier cannot encode a value with wildcards")
    return "".join(text for _, text in tokens)


def _encode(tokens: list[tuple[str, str]], modifier: str, encoding: str) -> bytes:
    return _plain_text(tokens, modifier).encode(encoding)


def _base64offset(data: bytes) -> list[str]:
    """The three base64 renderings of ``data`` at byte offsets 0, 1, 2, trimmed of the unstable edges."""
    starts = (0, 2, 3)
    ends = (None, -3, -2)
    out = []
    for shift in range(3):
        encoded = base64.b64encode(b" " * shift + data).decode("ascii")
        out.append(encoded[starts[shift]: ends[(len(data) + shift) % 3]])
    return out


def _windash(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Variants of a value with each word-leading ``-`` or ``/`` in every Windows dash spelling."""
    spots: list[tuple[int, int]] = []
    for index, (kind, text) in enumerate(tokens):
        if kind == LIT:
            spots.extend((index, m.start()) for m in _WINDASH_AT.finditer(text))
    if not spots:
        return [tokens]
    if len(WINDASH_CHARS) ** len(spots) > WINDASH_MAX_VARIANTS:
        return [_with_class(tokens, spots)]
    variants = []
    for combo in itertools.product(WINDASH_CHARS, repeat=len(spots)):
        chars = dict(zip(spots, combo, strict=True))
        new = []
        for index, (kind, text) in enumerate(tokens):
            if kind == LIT:
                text = "".join(chars.get((index, pos), ch) for pos, ch in enumerate(text))
            new.append((kind, text))
        variants.append(new)
    return variants


def _with_class(tokens: list[tuple[str, str]], spots: list[tuple[int, int]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for index, (kind, text) in enumerate(tokens):
        if kind != LIT:
            out.append((kind, text))
            continue
        cuts = sorted(pos for i, pos in spots if i == index)
        start = 0
        for pos in cuts:
            if pos > start:
                out.append((LIT, text[start:pos]))
            out.append((CLASS, WINDASH_CHARS))
            start = pos + 1
        if start < len(text):
            out.append((LIT, text[start:]))
    return out


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_MEMO: dict[tuple[type, Any, tuple[str, ...]], tuple[Value, ...]] = {}


def build_values(
    raw: Any,
    modifiers: Sequence[str],
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Value, ...]:
    """Return the variants one written value stands for under ``modifiers`` (OR'ed together)."""
    if placeholders is None and not isinstance(raw, list | dict):
        key = (type(raw), raw, tuple(modifiers))
        cached = _MEMO.get(key)
        if cached is None:
            cached = _MEMO[key] = _build_values(raw, modifiers, None)
        return cached
    return _build_values(raw, modifiers, placeholders)


def _build_values(
    raw: Any,
    modifiers: Sequence[str],
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Value, ...]:
    mods = [m.lower() for m in modifiers]
    unknown = [m for m in mods if m not in KNOWN]
    if unknown:
        raise ValueError_(f"unknown modifier {'|'.join(unknown)}")
    if "exists" in mods:
        if not isinstance(raw, bool):
            raise ValueError_("the exists modifier takes true or false")
        return (ExistsValue(raw),)
    if raw is None:
        if [m for m in mods if m not in {"all", "cased"}]:
            raise ValueError_("null cannot take modifiers")
        return (NullValue(),)
    if isinstance(raw, list | dict):
        raise ValueError_(f"a value must be a scalar, not {type(raw).__name__}")
    cased = "cased" in mods
    if any(m in TIME_PARTS for m in mods):
        return (_time_part(raw, mods),)
    numeric = [m for m in mods if m in NUMERIC]
    if numeric:
        try:
            number = float(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError_(f"the {numeric[0]} modifier needs a number, got {raw!r}") from exc
        return (NumberValue(numeric[0], number),)
    text = _scalar_text(raw)
    if "re" in mods:
        flags = {m for m in mods if m in REGEX_FLAGS}
        try:
            re.compile(text)
        except re.error as exc:
            raise ValueError_(f"invalid regular expression {text!r}: {exc}") from exc
        return (RegexValue(text, bool(flags & {"i", "ignorecase"}), bool(flags & {"m", "multiline"}),
                           bool(flags & {"s", "dotall"})),)
    if "cidr" in mods:
        import ipaddress

        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise ValueError_(f"invalid network {text!r} for the cidr modifier") from exc
        return (CidrValue(text),)
    if "fieldref" in mods:
        mode = next((m for m in mods if m in POSITION), "eq")
        return (FieldRefValue(text, mode, cased),)
    if "expand" in mods:
        names = re.findall(r"%([A-Za-z0-9_.-]+)%", text)
        table = placeholders or {}
        missing = [n for n in names if n not in table]
        if missing:
            raise ValueError_(f"placeholder %{missing[0]}% has no values",
                              ) from None
        texts = [text]
        for name in names:
            texts = [t.replace(f"%{name}%", str(v)) for t in texts for v in table[name]]
        others = [m for m in modifiers if m.lower() != "expand"]
        out: list[Value] = []
        for expanded in texts:
            out.extend(build_values(expanded, others, None))
        return tuple(out)
    variants: list[list[tuple[str, str]]] = [parse_wildcards(text)]
    for mod in mods:
        if mod in {"wide", "utf16le"}:
            variants = [[(LIT, _encode(v, mod, "utf-16-le").decode("latin-1"))] for v in variants]
        elif mod == "utf16be":
            variants = [[(LIT, _encode(v, mod, "utf-16-be").decode("latin-1"))] for v in variants]
        elif mod == "utf16":
            variants = [[(LIT, _encode(v, mod, "utf-16").decode("latin-1"))] for v in variants]
        elif mod == "base64":
            variants = [[(LIT, base64.b64encode(_latin_or_utf8(v, mod)).decode("ascii"))] for v in variants]
        elif mod == "base64offset":
            variants = [[(LIT, enc)] for v in variants for enc in _base64offset(_latin_or_utf8(v, mod))]
        elif mod == "windash":
            variants = [w for v in variants for w in _windash(v)]
        elif mod == "contains":
            variants = [_wrap(v, start=True, end=True) for v in variants]
        elif mod == "startswith":
            variants = [_wrap(v, start=False, end=True) for v in variants]
        elif mod == "endswith":
            variants = [_wrap(v, start=True, end=False) for v in variants]
    return tuple(StrPattern(tuple(v), cased) for v in _dedupe(variants))


def _time_part(raw: Any, mods: Sequence[str]) -> TimePartValue:
    """``|hour: 3``, ``|hour|gte: 22``: a part of the field's date-time compared with a whole number.
    Refused: another modifier beside it (but ``neq``, ``cased``), two parts, a value that is not a whole
    number, and for equality a number the part never takes (hour 24)."""
    parts = [m for m in mods if m in TIME_PARTS]
    numeric = [m for m in mods if m in NUMERIC]
    others = [m for m in mods if m not in TIME_PARTS and m not in NUMERIC and m not in {"neq", "cased"}]
    if len(parts) > 1 or len(numeric) > 1 or others:
        raise ValueError_(f"the {parts[0]} modifier takes one of gt, gte, lt, lte (or neq) beside it, "
                          f"not {'|'.join(parts[1:] + numeric[1:] + others)}")
    part = parts[0]
    number: int | None = None
    written_whole = isinstance(raw, str) and re.fullmatch(r"\s*[-+]?\d+\s*", raw) is not None
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif (isinstance(raw, float) and raw.is_integer()) or written_whole:
        number = int(raw)
    if number is None:
        raise ValueError_(f"the {part} modifier needs a whole number (the {part} of the field's date-time), "
                          f"got {raw!r}")
    op = numeric[0] if numeric else "eq"
    low, high = TIME_PARTS[part]
    if op == "eq" and low is not None and high is not None and not low <= number <= high:
        raise ValueError_(f"the {part} modifier's number is between {low} and {high}, got {number}")
    return TimePartValue(part, op, number)


def _latin_or_utf8(tokens: list[tuple[str, str]], modifier: str) -> bytes:
    """Bytes of a value for base64: UTF-16 renderings carry their bytes as latin-1 text."""
    text = _plain_text(tokens, modifier)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _wrap(tokens: list[tuple[str, str]], *, start: bool, end: bool) -> list[tuple[str, str]]:
    out = list(tokens)
    if start and not (out and out[0][0] == STAR):
        out.insert(0, (STAR, "*"))
    if end and not (out and out[-1][0] == STAR):
        out.append((STAR, "*"))
    return out


def _dedupe(variants: list[list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for v in variants:
        key = tuple(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out
