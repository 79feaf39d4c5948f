"""The Sigma condition grammar: ``and``, ``or``, ``not``, parentheses, ``1 of x*``, ``all of them``.

Precedence, lowest first: ``or``, ``and``, ``not``. Aggregations after a pipe (``| count() > 5``) are
the deprecated Sigma 1 form; they are refused with a hint to use a correlation rule.
"""

from __future__ import annotations

import fnmatch
import re

from mamori.detect.sigma.model import And, Node, Not, OfPattern, Or, Ref

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


class ConditionError(Exception):
    """A condition that does not parse; the message quotes the condition and says where."""


def tokenize(text: str) -> list[str]:
    """Split a condition into words and parentheses."""
    tokens = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            break
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def parse_condition(text: str, names: list[str]) -> Node:
    """Parse a condition over the selections called ``names``; unknown names are errors."""
    if "|" in text:
        raise ConditionError(f"aggregation in condition {text!r} is Sigma 1 syntax; use a correlation rule")
    tokens = tokenize(text)
    if not tokens:
        raise ConditionError("empty condition")
    parser = _Parser(tokens, names, text)
    node = parser.parse_or()
    if parser.pos != len(tokens):
        raise ConditionError(f"unexpected {tokens[parser.pos]!r} in condition {text!r}")
    return node


class _Parser:
    def __init__(self, tokens: list[str], names: list[str], text: str) -> None:
        self.tokens = tokens
        self.names = names
        self.text = text
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ConditionError(f"condition {self.text!r} ends too early")
        self.pos += 1
        return token

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while (self.peek() or "").lower() == "or":
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_not()]
        while (self.peek() or "").lower() == "and":
            self.take()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self) -> Node:
        if (self.peek() or "").lower() == "not":
            self.take()
            return Not(self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> Node:
        token = self.take()
        low = token.lower()
        if token == "(":
            node = self.parse_or()
            if self.peek() != ")":
                raise ConditionError(f"missing ')' in condition {self.text!r}")
            self.take()
            return node
        if token == ")":
            raise ConditionError(f"unexpected ')' in condition {self.text!r}")
        if (low == "all" or low.isdigit() or low == "any") and (self.peek() or "").lower() == "of":
            self.take()
            target = self.take()
            quantifier = "all" if low == "all" else ("1" if low == "any" else low)
            if target.lower() != "them" and not fnmatch.filter(self.names, target):
                raise ConditionError(f"'{token} of {target}' matches no selection in {self.text!r}")
            return OfPattern(quantifier, "them" if target.lower() == "them" else target)
        if low in {"and", "or", "not", "of"}:
            raise ConditionError(f"unexpected {token!r} in condition {self.text!r}")
        if token not in self.names:
            raise ConditionError(f"condition {self.text!r} names {token!r}, which is not a selection")
        return Ref(token)


def expand_of(node: OfPattern, names: list[str]) -> list[str]:
    """Return the selection names an ``of`` quantifier ranges over (``them``: all but ``_`` ones)."""
    if node.pattern == "them":
        return [n for n in names if not n.startswith("_")]
    return fnmatch.filter(names, node.pattern)
