"""Load Sigma rules from folders, files and zip archives into the lean rule model.

YAML is parsed with libyaml (``CSafeLoader``); a broken rule is refused with its file and the reason
while the others load. Multi-document rule files (``action: global``) are merged as the spec says.
Meta-filter documents (``filter:`` instead of ``detection:``) load beside the rules; ``ruleset`` applies
them to the rules they name.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mamori.detect.sigma.condition import ConditionError, parse_condition
from mamori.detect.sigma.model import (
    Correlation,
    DetectionItem,
    Filter,
    Node,
    Or,
    Refusal,
    Rule,
    Selection,
    Value,
)
from mamori.detect.sigma.values import ValueError_, build_values
from mamori.events.logsources import LogSource

_fast_loads: Callable[[str], Any] | None
try:
    import yaml_rs

    _fast_loads = yaml_rs.loads
except ImportError:  # a speed-up only: libyaml reads every rule too
    _fast_loads = None

RULE_SUFFIXES = (".yml", ".yaml")
CORRELATION_TYPES = {"event_count", "value_count", "temporal", "temporal_ordered", "value_sum", "value_avg"}
# pySigma types the specification leaves undefined, refused with the reason (see ``build_correlation``)
UNDEFINED_CORRELATION_TYPES = frozenset({"value_percentile", "value_median"})
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Scalars YAML 1.1 (PyYAML, pySigma's reference) and YAML 1.2 (the fast Rust parser) read differently:
# leading-zero, 0o and 0b numbers, yes/no/on/off, sexagesimal. Files that may hold one, files with
# several documents, and anything the fast parser refuses are read with libyaml.
_YAML11_TEXT_RISKS = (b": 0", b"- 0", b"[0", b"[ 0", b", 0", b",0", b"\n---", b"\n...", b"\n%")
# a whole plain scalar of digits after a leading zero (0755, 089, 0b101, 0o17): GUIDs and hashes that
# merely start with 0 read the same in both versions
# (two patterns: one alternation of both takes twice as long to search)
_YAML11_NUMBER = re.compile(
    rb"(?:[:\-][ \t]+|[\[,][ \t]*)[-+]?0(?:[0-9_]+|b[01_]+|o[0-7_]+)[ \t]*(?:$|#|,|\]|\})", re.MULTILINE)
_YAML_DIRECTIVE = re.compile(rb"^(?:---|\.\.\.|%)", re.MULTILINE)  # several documents, or a directive
_YAML11_WORDS = frozenset({"yes", "no", "on", "off", "y", "n"})
_SEXAGESIMAL = re.compile(r"^[-+]?\d+(?::[0-5]?\d)+$")
_TIMESPAN = re.compile(r"^\s*(\d+)\s*([smhdwMy]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}


class RuleLoadError(Exception):
    """Why a rule file cannot be used; the loader turns it into a Refusal."""


def iter_rule_texts(sources: Iterable[Path]) -> Iterator[tuple[str, str | bytes]]:
    """Yield (display path, text) for every rule file under the given folders, files and zips."""
    for source in sources:
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.suffix.lower() in RULE_SUFFIXES and path.is_file():
                    yield str(path), path.read_bytes()
        elif source.suffix.lower() == ".zip":
            with zipfile.ZipFile(source) as archive:
                for name in sorted(archive.namelist()):
                    if name.lower().endswith(RULE_SUFFIXES):
                        yield f"{source}!{name}", archive.read(name)
        elif source.is_file():
            yield str(source), source.read_bytes()
        else:
            raise FileNotFoundError(f"{source}: no such rule file, folder or zip")


def parse_rule_text(
    path: str,
    text: str | bytes,
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[Rule | Correlation | Filter], list[Refusal]]:
    """Parse one rule file: its rules, correlations and meta-filters, or the refusal saying why it cannot
    be used."""
    try:
        documents = _load_documents(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        return [], [Refusal(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]
    out: list[Rule | Correlation | Filter] = []
    refused: list[Refusal] = []
    base: dict[str, Any] = {}
    for number, doc in enumerate(documents):
        where = path if len(documents) == 1 else f"{path} (document {number + 1})"
        if not isinstance(doc, dict):
            refused.append(Refusal(where, "a rule must be a YAML mapping"))
            continue
        action = doc.get("action")
        if action == "global":
            base = {k: v for k, v in doc.items() if k != "action"}
            continue
        if action == "reset":
            base = {}
            continue
        if action == "repeat":
            doc = {k: v for k, v in doc.items() if k != "action"}
        merged = _merge(base, doc) if base else doc
        try:
            if "correlation" in merged:
                out.append(build_correlation(merged, where))
            elif "filter" in merged and "detection" not in merged:
                out.append(build_filter(merged, where, placeholders))
            else:
                out.append(build_rule(merged, where, placeholders))
        except RuleLoadError as exc:
            refused.append(Refusal(where, str(exc), str(merged.get("id") or "")))
    return out, refused


def _load_documents(text: str | bytes) -> list[Any]:
    """Parse YAML documents: the fast parser where it reads the file as YAML 1.1 would, else libyaml."""
    data = text if isinstance(text, bytes) else text.encode()
    risky = any(risk in data for risk in _YAML11_TEXT_RISKS) and (
        _YAML11_NUMBER.search(data) is not None or _YAML_DIRECTIVE.search(data) is not None)
    if _fast_loads is not None and not risky:
        try:
            document = _fast_loads(data.decode("utf-8"))
        except Exception:
            document = None
        else:
            sections = [document.get(k) for k in ("detection", "correlation", "filter")] if isinstance(
                document, dict) else [document]
            # walking the parsed sections costs a sixth of searching the text for a word YAML 1.1
            # reads as a boolean (a case-blind search with no literal to skip ahead by)
            if not _reads_differently(sections):
                return [] if document is None else [document]
    return [d for d in yaml.load_all(data, Loader=_LOADER) if d is not None]


def _reads_differently(node: Any) -> bool:
    """Whether a YAML 1.2 reading holds a plain scalar YAML 1.1 would read as another type."""
    if isinstance(node, dict):
        return any(_reads_differently(k) or _reads_differently(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_reads_differently(v) for v in node)
    if isinstance(node, str):
        return node.lower() in _YAML11_WORDS or bool(_SEXAGESIMAL.match(node))
    return False


def _merge(base: Mapping[str, Any], doc: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in doc.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def _selections(section: Mapping[str, Any], where: str, not_selections: set[str],
                placeholders: Mapping[str, Sequence[str]] | None) -> list[Selection]:
    """The named selections of a ``detection`` or ``filter`` section (every key but ``not_selections``);
    a broken one raises RuleLoadError naming ``where.name``."""
    selections = []
    for name, definition in section.items():
        if name in not_selections:
            continue
        try:
            selections.append(build_selection(str(name), definition, placeholders))
        except (ValueError_, RuleLoadError) as exc:
            raise RuleLoadError(f"{where}.{name}: {exc}") from exc
    return selections


def build_rule(doc: Mapping[str, Any], where: str, placeholders: Mapping[str, Sequence[str]] | None) -> Rule:
    """Build a detection rule from its YAML mapping, or raise RuleLoadError with the reason."""
    rule_id = _text(doc.get("id"))
    title = _text(doc.get("title"))
    if not title:
        raise RuleLoadError("the rule has no title")
    detection = doc.get("detection")
    if not isinstance(detection, dict):
        raise RuleLoadError("the rule has no detection section")
    logsource_raw = doc.get("logsource") or {}
    if not isinstance(logsource_raw, dict):
        raise RuleLoadError("logsource must be a mapping")
    logsource = _logsource(logsource_raw)
    selections = _selections(detection, "detection", {"condition", "timeframe", "fields"}, placeholders)
    names = [s.name for s in selections]
    conditions = detection.get("condition")
    if conditions is None:
        raise RuleLoadError("detection.condition is missing")
    condition_texts = conditions if isinstance(conditions, list) else [conditions]
    try:
        nodes: list[Node] = [parse_condition(str(c), names) for c in condition_texts]
    except ConditionError as exc:
        raise RuleLoadError(f"detection.condition: {exc}") from exc
    condition = nodes[0] if len(nodes) == 1 else Or(tuple(nodes))
    level = _text(doc.get("level")).lower() or "medium"
    return Rule(
        id=rule_id or title,
        title=title,
        level=level,
        status=_text(doc.get("status")).lower(),
        author=_text(doc.get("author")),
        tags=tuple(t.lower() for t in _tuple(doc.get("tags"))),
        logsource=logsource,
        selections=tuple(selections),
        condition=condition,
        path=where,
        description=_text(doc.get("description")).strip(),
        falsepositives=_tuple(doc.get("falsepositives")),
        references=_tuple(doc.get("references")),
        date=_text(doc.get("date")),
        name=_text(doc.get("name")),
        fields=_tuple(doc.get("fields")),
    )


def _lower(value: Any) -> str | None:
    return None if value is None else str(value).lower()


def _logsource(raw: Mapping[str, Any]) -> LogSource:
    """A rule's or filter's ``logsource`` mapping (product, category, service, lower-cased)."""
    return LogSource(product=_lower(raw.get("product")), category=_lower(raw.get("category")),
                     service=_lower(raw.get("service")))


def build_selection(name: str, definition: Any, placeholders: Mapping[str, Sequence[str]] | None) -> Selection:
    """Build one search identifier: a map (AND), a list of maps (OR) or a list of keywords."""
    if isinstance(definition, dict):
        return Selection(name, (build_map(definition, placeholders),))
    if isinstance(definition, list):
        if not definition:
            raise RuleLoadError("an empty list matches nothing")
        if all(isinstance(d, dict) for d in definition):
            return Selection(name, tuple(build_map(d, placeholders) for d in definition))
        if any(isinstance(d, dict | list) for d in definition):
            raise RuleLoadError("a list mixes maps and keywords")
        return Selection(name, ((keyword_item(definition, ()),),))
    if isinstance(definition, str | int | float):
        return Selection(name, ((keyword_item([definition], ()),),))
    raise RuleLoadError(f"a search identifier must be a map or a list, not {type(definition).__name__}")


def keyword_item(values: list[Any], modifiers: tuple[str, ...]) -> DetectionItem:
    """Keywords: match anywhere in the event, as ``contains`` unless the value has its own wildcards."""
    mods = modifiers if any(m in {"contains", "startswith", "endswith", "re"} for m in modifiers) else (
        *modifiers, "contains")
    alternatives = tuple(build_values(v, [m for m in mods if m != "all"]) for v in values)
    return DetectionItem(None, alternatives, "all" in modifiers, tuple(mods))


def build_map(definition: Mapping[Any, Any], placeholders: Mapping[str, Sequence[str]] | None
              ) -> tuple[DetectionItem, ...]:
    """Build the AND of the ``field|modifiers: values`` lines of one map."""
    items = []
    for key, raw in definition.items():
        parts = str(key).split("|")
        field = parts[0] or None
        modifiers = tuple(p for p in parts[1:] if p)
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            raise RuleLoadError(f"{key}: empty value list")
        if field is None:
            items.append(keyword_item(values, modifiers))
            continue
        try:
            alternatives: tuple[tuple[Value, ...], ...] = tuple(
                build_values(v, [m for m in modifiers if m.lower() != "all"], placeholders) for v in values)
        except ValueError_ as exc:
            raise RuleLoadError(f"{key}: {exc}") from exc
        lowered = tuple(m.lower() for m in modifiers)
        items.append(DetectionItem(field, alternatives, "all" in lowered, lowered, "neq" in lowered))
    return tuple(items)


def parse_timespan(text: Any) -> int:
    """Turn a Sigma timespan (``30s``, ``5m``, ``1h``, ``2d``) into nanoseconds."""
    match = _TIMESPAN.match(str(text))
    if not match:
        raise RuleLoadError(f"timespan {text!r} is not a number followed by s, m, h, d, w, M or y")
    return int(match.group(1)) * _UNITS[match.group(2)] * 1_000_000_000


def build_correlation(doc: Mapping[str, Any], where: str) -> Correlation:
    """Build a correlation rule from its YAML mapping, or raise RuleLoadError with the reason."""
    body = doc.get("correlation")
    if not isinstance(body, dict):
        raise RuleLoadError("correlation must be a mapping")
    kind = _text(body.get("type"))
    if kind in UNDEFINED_CORRELATION_TYPES:
        raise RuleLoadError(
            f"correlation.type {kind!r} is not supported: the Sigma correlation specification (2.0) does not "
            "define it, and pySigma leaves how a percentile or median is computed (nearest rank, "
            "interpolation, an estimate) to each backend, so its hits could not be checked against another "
            "tool's; use value_avg, value_sum or value_count")
    if kind not in CORRELATION_TYPES:
        raise RuleLoadError(f"correlation.type {kind!r} is not one of {', '.join(sorted(CORRELATION_TYPES))}")
    rules = _tuple(body.get("rules"))
    if not rules:
        raise RuleLoadError("correlation.rules is empty")
    if "timespan" not in body and "timeframe" not in body:
        raise RuleLoadError("correlation.timespan is missing")
    timespan = parse_timespan(body.get("timespan", body.get("timeframe")))
    condition_raw = body.get("condition")
    condition: list[tuple[str, float]] = []
    condition_field = None
    if kind in {"temporal", "temporal_ordered"} and condition_raw is None:
        condition = [("gte", float(len(rules)))]
    elif isinstance(condition_raw, dict):
        for op, value in condition_raw.items():
            if op == "field":
                condition_field = str(value)
            elif op in {"gt", "gte", "lt", "lte", "eq", "neq"}:
                try:
                    condition.append((op, float(value)))
                except (TypeError, ValueError) as exc:
                    raise RuleLoadError(f"correlation.condition.{op} must be a number") from exc
            else:
                raise RuleLoadError(f"correlation.condition has unknown operator {op!r}")
    else:
        raise RuleLoadError("correlation.condition must be a mapping such as {gte: 10}")
    if kind in {"value_count", "value_sum", "value_avg"} and not condition_field:
        raise RuleLoadError(f"a {kind} correlation needs condition.field")
    aliases_raw = body.get("aliases") or {}
    if not isinstance(aliases_raw, dict):
        raise RuleLoadError("correlation.aliases must be a mapping")
    aliases = tuple(
        (str(alias), tuple((str(r), str(f)) for r, f in (mapping or {}).items()))
        for alias, mapping in aliases_raw.items()
    )
    title = _text(doc.get("title"))
    return Correlation(
        id=_text(doc.get("id")) or title,
        title=title,
        level=_text(doc.get("level")).lower() or "medium",
        status=_text(doc.get("status")).lower(),
        author=_text(doc.get("author")),
        tags=tuple(t.lower() for t in _tuple(doc.get("tags"))),
        type=kind,
        rules=rules,
        group_by=_tuple(body.get("group-by")),
        timespan_ns=timespan,
        condition=tuple(condition),
        condition_field=condition_field,
        aliases=aliases,
        generate=bool(body.get("generate", False)),
        path=where,
        description=_text(doc.get("description")).strip(),
        name=_text(doc.get("name")),
    )


FILTER_ANY = frozenset({"any", "all"})  # ``filter.rules`` words for every rule of the log source (pySigma)


def build_filter(doc: Mapping[str, Any], where: str, placeholders: Mapping[str, Sequence[str]] | None) -> Filter:
    """Build a meta-filter document (Sigma filters specification 2.x), or raise RuleLoadError with the
    reason: a title, a log source, and ``filter`` holding ``rules`` (ids or names; ``any``, ``all`` or an
    empty list for every rule of the log source, as pySigma reads it), its selections and one condition."""
    title = _text(doc.get("title"))
    if not title:
        raise RuleLoadError("the filter has no title")
    logsource_raw = doc.get("logsource")
    if not isinstance(logsource_raw, dict):
        raise RuleLoadError("the filter has no logsource mapping (the filters specification makes it mandatory)")
    body = doc.get("filter")
    if not isinstance(body, dict):
        raise RuleLoadError("filter must be a mapping of rules, selections and a condition")
    if "rules" not in body:
        raise RuleLoadError("filter.rules is missing: list the rule ids or names to tune, or write "
                            "'rules: any' for every rule of the log source")
    raw_rules = body.get("rules")
    if isinstance(raw_rules, str):
        rules: tuple[str, ...] = () if raw_rules.strip().lower() in FILTER_ANY else (raw_rules,)
    elif isinstance(raw_rules, list) and all(isinstance(r, str | int) for r in raw_rules):
        rules = tuple(str(r) for r in raw_rules)  # (empty: every rule of the log source)
    else:
        raise RuleLoadError("filter.rules must be a rule id or name, a list of them, or 'any'")
    condition = body.get("condition")
    if not isinstance(condition, str):
        raise RuleLoadError("filter.condition must be one condition text, such as 'selection'"
                            if condition is not None else "filter.condition is missing")
    selections = _selections(body, "filter", {"rules", "condition"}, placeholders)
    if not selections:
        raise RuleLoadError("filter has no selection to match")
    try:
        node = parse_condition(condition, [s.name for s in selections])
    except ConditionError as exc:
        raise RuleLoadError(f"filter.condition: {exc}") from exc
    return Filter(
        id=_text(doc.get("id")) or title,
        title=title,
        logsource=_logsource(logsource_raw),
        rules=rules,
        selections=tuple(selections),
        condition=node,
        path=where,
        description=_text(doc.get("description")).strip(),
        author=_text(doc.get("author")),
    )
