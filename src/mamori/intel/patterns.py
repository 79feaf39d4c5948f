"""Compile STIX 2.1 patterns into what the IOC matcher evaluates, or refuse them with the reason.

Most indicators are one equality (``[ipv4-addr:value = '203.0.113.5']``): those become *atoms*,
looked up by hash join (or by CIDR range). Anything else inside one observation (AND/OR, ``!=``,
``IN``, ``LIKE``, ``MATCHES``, ``ISSUBSET``, ordering comparisons, ``NOT``) becomes an *expression*
evaluated on each event. Several observations joined by OR are matched separately. What needs more
than one event (observation AND, FOLLOWEDBY, WITHIN, REPEATS, START/STOP) is refused, as are
object paths the event model does not carry.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mamori.intel.errors import PatternNotSupported


class Kind(StrEnum):
    """Kinds of observables the matcher knows how to find in events."""

    IP = "ip"
    DOMAIN = "domain"
    URL = "url"
    HASH = "hash"
    EMAIL = "email"
    FILE_NAME = "file_name"


@dataclass(frozen=True)
class Atom:
    """One observable value that alone matches (exact value, or an IP network when ``cidr``)."""

    kind: Kind
    value: str
    cidr: bool = False


@dataclass(frozen=True)
class Comparison:
    """One comparison of an observable kind against constants, as written in the pattern."""

    kind: Kind
    operator: str
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class Boolean:
    """AND or OR of comparisons (or nested booleans) within one observation."""

    operator: str
    terms: tuple[Comparison | Boolean, ...]


Expression = Comparison | Boolean


@dataclass(frozen=True)
class CompiledPattern:
    """A pattern as the matcher runs it: any atom or any expression matching means a match."""

    atoms: tuple[Atom, ...] = ()
    expressions: tuple[Expression, ...] = ()


_HASH_KEYS = {"md5", "sha-1", "sha1", "sha-256", "sha256", "sha-512", "sha512", "ssdeep"}
_SIMPLE = re.compile(r"^\s*\[\s*([a-z0-9-]+):([A-Za-z0-9_.'\-]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*\]\s*$")


def kind_of(object_type: str, path: str) -> Kind | None:
    """The observable kind an object path designates, or None if the matcher has no column for it."""
    steps = [step.strip("'").lower() for step in path.replace("[*]", "").split(".")]
    if object_type in ("ipv4-addr", "ipv6-addr") and steps == ["value"]:
        return Kind.IP
    if object_type == "network-traffic" and steps in (["dst_ref", "value"], ["src_ref", "value"]):
        return Kind.IP
    if object_type == "domain-name" and steps == ["value"]:
        return Kind.DOMAIN
    if object_type == "url" and steps == ["value"]:
        return Kind.URL
    if object_type == "email-addr" and steps == ["value"]:
        return Kind.EMAIL
    email_refs = ("from_ref", "sender_ref", "to_refs", "cc_refs", "bcc_refs")
    if object_type == "email-message" and len(steps) == 2 and steps[1] == "value" and steps[0] in email_refs:
        return Kind.EMAIL
    if object_type == "file" and len(steps) == 2 and steps[0] == "hashes" and steps[1] in _HASH_KEYS:
        return Kind.HASH
    if object_type == "file" and steps == ["name"]:
        return Kind.FILE_NAME
    if object_type == "process" and steps == ["image_ref", "name"]:
        return Kind.FILE_NAME
    return None


def normalise(kind: Kind, value: str) -> str:
    """The form values of a kind are compared in, on both the indicator and the event side."""
    text = value.strip()
    if kind == Kind.IP:
        if ":" in text and "/" not in text:
            try:
                return ipaddress.ip_address(text).compressed
            except ValueError:
                return text.lower()
        return text
    text = text.lower()
    if kind == Kind.DOMAIN:
        return text.rstrip(".")
    if kind == Kind.URL:
        return text.rstrip("/")
    return text


def _atom(kind: Kind, value: str, where: str) -> Atom:
    if kind == Kind.IP and "/" in value:
        try:
            network = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise PatternNotSupported(f"{value!r} is not an IP network", where=where) from None
        if network.num_addresses == 1:
            return Atom(kind, normalise(kind, str(network.network_address)))
        return Atom(kind, network.with_prefixlen, cidr=True)
    return Atom(kind, normalise(kind, value))


def _unescape(text: str) -> str:
    """Undo STIX string escapes (``\\'`` and ``\\\\``), which the parser leaves in place."""
    return re.sub(r"\\(.)", r"\1", text)


def compile_pattern(pattern: str, *, pattern_type: str = "stix", where: str = "pattern") -> CompiledPattern:
    """Compile one indicator pattern; raise ``PatternNotSupported`` naming what is not supported."""
    if pattern_type != "stix":
        raise PatternNotSupported(
            f"pattern_type {pattern_type!r} is not matched by Mamori's IOC engine",
            where=where,
            hint="only STIX patterns are matched; use Sigma rules for detection logic",
        )
    simple = _SIMPLE.match(pattern)
    if simple:
        kind = kind_of(simple.group(1), simple.group(2))
        if kind is not None:
            return CompiledPattern(atoms=(_atom(kind, _unescape(simple.group(3)), where),))
    return _compile_general(pattern, where)


def _compile_general(pattern: str, where: str) -> CompiledPattern:
    from stix2.pattern_visitor import create_pattern_object

    try:
        tree = create_pattern_object(pattern, version="2.1")
    except Exception as exc:  # the parser raises several exception types
        raise PatternNotSupported(f"not a valid STIX 2.1 pattern: {exc}", where=where) from None
    atoms: list[Atom] = []
    expressions: list[Expression] = []
    for observation in _observations(tree, where):
        expression = _expression(observation.operand, where)
        if isinstance(expression, Comparison) and not expression.negated and expression.operator in ("=", "IN"):
            atoms.extend(_atom(expression.kind, v, where) for v in expression.values)
        elif (
            isinstance(expression, Comparison)
            and not expression.negated
            and expression.operator == "ISSUBSET"
            and expression.kind == Kind.IP
        ):
            atoms.extend(_atom(Kind.IP, v, where) for v in expression.values)
        elif isinstance(expression, Boolean) and expression.operator == "OR" and _all_equalities(expression):
            atoms.extend(_atom(c.kind, v, where) for c in _flatten(expression) for v in c.values)
        else:
            expressions.append(expression)
    return CompiledPattern(atoms=tuple(atoms), expressions=tuple(expressions))


def _observations(node: Any, where: str) -> list[Any]:
    name = type(node).__name__
    if name == "ObservationExpression":
        return [node]
    if name == "ParentheticalExpression":
        return _observations(node.expression, where)
    if name == "OrObservationExpression":
        return [obs for operand in node.operands for obs in _observations(operand, where)]
    if name in ("AndObservationExpression", "FollowedByObservationExpression"):
        raise PatternNotSupported(
            f"{node.operator} between observations needs several events correlated in time",
            where=where,
            hint="express it as a Sigma correlation rule, or split the indicator",
        )
    if name == "QualifiedObservationExpression":
        raise PatternNotSupported(
            f"the qualifier {node.qualifier} needs several events correlated in time", where=where
        )
    raise PatternNotSupported(f"unsupported pattern element {name}", where=where)


_OPERATORS = {"=", "!=", "<>", ">", "<", ">=", "<=", "IN", "LIKE", "MATCHES", "ISSUBSET"}


def _expression(node: Any, where: str) -> Expression:
    name = type(node).__name__
    if name == "ParentheticalExpression":
        return _expression(node.expression, where)
    if name in ("AndBooleanExpression", "OrBooleanExpression"):
        return Boolean(node.operator, tuple(_expression(op, where) for op in node.operands))
    if name.endswith("ComparisonExpression"):
        operator = str(node.operator).upper()
        if operator not in _OPERATORS:
            raise PatternNotSupported(f"the operator {operator} is not supported", where=where)
        path = node.lhs
        steps = []
        for step in path.property_path:
            steps.append(step.property_name + ("[*]" if type(step).__name__ == "ListObjectPathComponent" else ""))
        kind = kind_of(path.object_type_name, ".".join(steps))
        if kind is None:
            raise PatternNotSupported(
                f"{path.object_type_name}:{'.'.join(steps)} is not an observable Mamori finds in events",
                where=where,
                hint="supported: ipv4/ipv6-addr, domain-name, url, email-addr, file hashes and name",
            )
        rhs = node.rhs
        constants = rhs.value if type(rhs).__name__ == "ListConstant" else [rhs]
        values = tuple(_unescape(str(c.value)) for c in constants)
        if operator == "MATCHES":
            for value in values:
                try:
                    re.compile(value)
                except re.error as exc:
                    raise PatternNotSupported(
                        f"MATCHES {value!r} is not a valid regular expression: {exc}", where=where
                    ) from None
        return Comparison(kind, "!=" if operator == "<>" else operator, values, bool(node.negated))
    raise PatternNotSupported(f"unsupported pattern element {name}", where=where)


def _flatten(expression: Boolean) -> list[Comparison]:
    found: list[Comparison] = []
    for term in expression.terms:
        found.extend(_flatten(term) if isinstance(term, Boolean) else [term])
    return found


def _all_equalities(expression: Boolean) -> bool:
    def ok(term: Expression) -> bool:
        if isinstance(term, Boolean):
            return term.operator == "OR" and all(ok(t) for t in term.terms)
        return not term.negated and term.operator in ("=", "IN")

    return ok(expression)
