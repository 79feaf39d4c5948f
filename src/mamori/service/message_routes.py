"""Which source's reader a syslog message goes to: the product inside the message (CEF, LEEF, FortiGate
``key=value``, Cisco ASA ``%ASA-``, PAN-OS CSV, Check Point, Junos, ESXi, auditd, BIND, Squid, ...).

``mamori hunt`` picks a file's reader by asking every source's sniffer about the file's first line
(``sources.registry.sniff_source``: the highest-priority claim wins). A syslog stream mixes products
line by line, so the live path asks the same question of each message. Asking the sniffers one line
at a time costs tens of microseconds a line, too much at 20,000 events/s, so the vendor sniffers'
tests are restated here as column expressions (``CLAIMS``: each claim is literals that must all occur,
and optionally a regex). One multi-pattern pass keeps the lines holding some claim's literal; one
expression over those lines gives each to the first source, in the sniffers' priority order, whose
claim holds. Tests check that the claims choose what the sniffers choose on every sample line of the
sources' fixtures and on the real device samples.

Two rarer kinds of line do go to the real sniffers, one at a time: bare JSON messages (every JSON
source may claim them) and lines with five or more ``=`` but no syslog header (generic syslog or the
``keyvalue`` catch-all). What no reader claims stays generic ``syslog``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mamori.sources.batch import PARSERS
from mamori.sources.paloalto import CSV_START
from mamori.sources.registry import SNIFF_BYTES, all_sources, sniff_head

GENERIC = "syslog"
_LEAD = r"^[\ufeff \t\r\n]*"  # what ``head_text`` strips before a sniffer's anchored test
_PAN_TYPES = "(?:TRAFFIC|THREAT|SYSTEM|CONFIG|USERID|AUTH|GLOBALPROTECT|DECRYPTION|HIPMATCH|CORRELATION)"


@dataclass(frozen=True)
class Claim:
    """One way a sniffer claims a line: every one of ``literals`` occurs in it, one of ``any_of`` (when
    given) does, and ``regex`` (when given) finds a match in it. A claim names at least one literal
    it needs (in ``literals`` or ``any_of``) unless its regex is anchored at the line's start: the
    batch is first cut down to the lines holding some claim's literal, in one multi-pattern pass."""

    literals: tuple[str, ...] = ()
    regex: str | None = None
    any_of: tuple[str, ...] = ()

    @property
    def needs(self) -> tuple[str, ...]:
        """Literals of which a line this claim holds for has at least one."""
        return self.literals[:1] or self.any_of

    def test(self, text: pl.Expr) -> pl.Expr:
        """The claim as an expression over a column of texts."""
        parts = [text.str.contains(literal, literal=True) for literal in self.literals]
        if self.any_of:
            parts.append(text.str.contains_any(list(self.any_of)))
        if self.regex is not None:
            parts.append(text.str.contains(self.regex))
        return pl.all_horizontal(parts)


# The vendor sniffers of ``mamori.sources`` (``sniff_<name>``), restated over columns. Priorities come
# from the registry, so a claim here only says *whether* a source claims a line, never who wins.
CLAIMS: dict[str, tuple[Claim, ...]] = {
    "sysmon_linux": (Claim(("<Event>", "Linux-Sysmon")),),
    "auditd": (Claim(("msg=audit(", "type=")),),
    "fortigate": (Claim(("logid=", "devid=")), Claim(("logid=", "type=")), Claim(("|Fortinet|Fortigate|",))),
    "cisco_asa": (Claim(("%ASA-",)), Claim(("%FTD-",))),
    "paloalto": (Claim(regex=CSV_START.replace(r"[A-Z]+", _PAN_TYPES), any_of=tuple(f",{t}," for t in _PAN_TYPES[3:-1]
                                                                                      .split("|"))),
                 Claim(("|Palo Alto Networks|",)),
                 Claim(regex=r'(?i)"palo alto networks"', any_of=('"palo alto networks"', '"Palo Alto Networks"',
                                                                  '"PALO ALTO NETWORKS"', '"Palo alto networks"'))),
    "checkpoint": (Claim(("|Check Point|",)), Claim(('[action:"', "origin:"))),
    "bind": (Claim(("client ",), r"client (?:@\S+ )?[0-9a-fA-F.:]+#\d+ .*: (?:query|answer): "),),
    "squid": (Claim(regex=_LEAD + r"\d{9,11}\.\d{3}\s+-?\d+ \S+ [A-Z_]+/\d{3} "),
              Claim(('] "',), r'\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d\] "[A-Z]+ (?:https?://|\S+:\d+ )')),
    "windns": (Claim(("DNS Server log file creation",)), Claim((" PACKET ", " UDP ", "["))),
    "juniper": (Claim(("RT_FLOW",)), Claim(("junos@2636",)), Claim(("RT_SCREEN",)), Claim((": UI_",)),
                Claim(("L2ALD_",))),
    "esxi": (Claim(("[Originator@6876",)), Claim(("[vob.",))),
    "cef": (Claim(("CEF:",)),),
    "leef": (Claim(("LEEF:",)),),
    "webaccess": (Claim(('] "',), r'\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "'),
                  Claim(regex=_LEAD + r"\[[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4}\] \["),
                  Claim(regex=_LEAD + r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[a-z]+\] \d+#\d+: ")),
    "openvpn": (Claim((" us=", "Data Channel")),),
}
_KEYVALUE_AT_LEAST = 5  # ``sniff_keyvalue`` wants five ``key=value`` pairs: fewer ``=`` cannot be keyvalue
# ``sniff_syslog``'s header test: a line that has one is syslog's (priority 20) before ``keyvalue``'s (10)
SYSLOG_HEADER = (_LEAD + r"(?:<\d{1,3}>)?(?:1 \d{4}-\d\d-\d\dT|[A-Z][a-z]{2} [ \d]\d (?:\d{4} )?\d\d:\d\d:\d\d |"
                 r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\S* \S+ \S+?(?:\[\d+\])?: )")


@functools.cache
def _ordered_claims() -> tuple[tuple[str, tuple[Claim, ...]], ...]:
    """The claims in the order ``sniff_source`` lets them win: higher priority first, then by name
    (``max`` keeps the first of equal claims, and the registry is sorted by name)."""
    sources = all_sources()
    names = sorted((n for n in CLAIMS if n in sources and n in PARSERS), key=lambda n: (-sources[n].priority, n))
    return tuple((name, CLAIMS[name]) for name in names)


@functools.cache
def _prefilter() -> tuple[tuple[str, ...], str]:
    """What a line some claim holds for must have: one of these literals, or a match of this
    alternation of the anchored regexes (cheap: it fails at the line's first characters)."""
    needs: list[str] = []
    anchored: list[str] = []
    for _, claims in _ordered_claims():
        for claim in claims:
            if claim.needs:
                needs.extend(claim.needs)
            else:
                assert claim.regex is not None and claim.regex.startswith(_LEAD), claim
                anchored.append(claim.regex[len(_LEAD):])
    return tuple(dict.fromkeys(needs)), _LEAD + "(?:" + "|".join(anchored) + ")"


def _worth_trying(claim: Claim, found: set[str], any_anchored: bool) -> bool:
    """Whether ``claim`` may hold for some line of a batch in which the literals ``found`` (lower case)
    occur, and some line matches an anchored regex when ``any_anchored``."""
    if not claim.needs:
        return any_anchored
    return any(need.lower() in found for need in claim.needs)


def _where_count(texts: pl.Series, mask: pl.Series, literal: str, at_least: int) -> pl.Series:
    """Where ``mask`` holds and ``literal`` occurs ``at_least`` times (counted only where ``mask`` holds)."""
    if not mask.any():
        return mask
    counted = texts.filter(mask).str.count_matches(literal, literal=True) >= at_least
    return mask.scatter(mask.arg_true(), counted.fill_null(False))


def _sniffed(text: str, names: Sequence[str]) -> str | None:
    """The source the sniffers of ``names`` give one line, as ``sniff_source`` would for a file holding
    only that line; None when none claims it."""
    spec = sniff_head(text.encode("utf-8", errors="replace")[:SNIFF_BYTES], "", names)
    return spec.name if spec is not None else None


@functools.cache
def _record_readers() -> tuple[str, ...]:
    """Every source with a record reader, by name: the candidates for a bare JSON message (all sniffers
    may claim one, as in ``sniff_source``)."""
    return tuple(n for n in all_sources() if n in PARSERS)


def _claim_in_one_pass(texts: pl.Series, left: pl.Series, any_anchored: bool,
                       assign: Callable[[np.ndarray, str], None]) -> None:
    """Give each line of ``left`` to the first source (in ``sniff_source``'s order) whose claims hold for
    it, in one expression over those lines; only the claims whose literals occur in them are tried."""
    needs, _ = _prefilter()
    n = len(texts)
    every = bool(left.all())
    sub = texts if every else texts.filter(left)
    found = set(sub.str.extract_many(list(needs), ascii_case_insensitive=True, overlapping=True).explode()
                .drop_nulls().str.to_lowercase().unique().to_list())
    ordered = [(name, tried) for name, claims in _ordered_claims()
               if (tried := [c for c in claims if _worth_trying(c, found, any_anchored)])]
    if not ordered:
        return
    text = pl.col("t")
    chain: Any = pl
    for number, (_, claims) in enumerate(ordered, start=1):
        chain = chain.when(pl.any_horizontal([c.test(text) for c in claims])).then(pl.lit(number, pl.Int32))
    won = pl.DataFrame({"t": sub}).select(chain.otherwise(pl.lit(0, pl.Int32))).to_series().to_numpy()
    rows = np.arange(n) if every else left.arg_true().to_numpy()
    for number in np.unique(won[won > 0]).tolist():
        assign(rows[won == number], ordered[number - 1][0])


def route_messages(texts: pl.Series) -> dict[str, list[int]]:
    """Group a batch of syslog messages by the source whose reader should parse each: returns, per
    source name, the (ascending) row numbers it takes. Rows no reader claims are ``syslog``'s."""
    n = len(texts)
    names: list[str] = [GENERIC]
    owner = np.zeros(n, dtype=np.int32)  # index into ``names``; 0: generic syslog

    def assign(rows: Sequence[int] | np.ndarray, name: str) -> None:
        if name not in names:
            names.append(name)
        owner[np.asarray(rows, dtype=np.int64)] = names.index(name)

    texts = texts.cast(pl.Utf8).fill_null("")
    json_like = texts.str.contains(_LEAD + r"[\{\[]").fill_null(False)
    if json_like.any():
        where = json_like.arg_true().to_list()
        for row, text in zip(where, texts.gather(where).to_list(), strict=True):
            assign([row], _sniffed(text, _record_readers()) or GENERIC)
    needs, anchored = _prefilter()
    by_literal = texts.str.contains_any(list(needs), ascii_case_insensitive=True).fill_null(False)
    by_anchor = texts.str.contains(anchored).fill_null(False)
    left = ~json_like & (by_literal | by_anchor)
    if left.any():  # one pass over the lines some claim may hold for: the first source to claim a line has it
        _claim_in_one_pass(texts, left, bool((by_anchor & ~json_like).any()), assign)
    # a line with a syslog header is syslog's before keyvalue's, whatever its pairs: only the unclaimed
    # lines without one (few, in a syslog stream) are counted for ``=`` and asked of the two sniffers
    bare = pl.Series(owner == 0) & ~json_like & ~texts.str.contains(SYSLOG_HEADER).fill_null(False)
    many = bare & _where_count(texts, bare, "=", _KEYVALUE_AT_LEAST)
    if many.any():
        where = many.arg_true().to_list()
        for row, text in zip(where, texts.gather(where).to_list(), strict=True):
            assign([row], _sniffed(text, ("syslog", "keyvalue")) or GENERIC)
    if len(names) == 1:
        return {GENERIC: list(range(n))}
    return {name: rows.tolist() for index, name in enumerate(names)
            if len(rows := np.flatnonzero(owner == index))}
