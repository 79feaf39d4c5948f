"""Add OCSF-aligned normalised fields to an event batch, from per-source tables (data files).

Each ``events/ocsf/<source>.yaml`` says, for the events of one source::

    source: cloudtrail
    defaults: {class_uid: 6003, category_uid: 6, activity_id: 0}
    classes:                      # the first rule that holds sets these ids
      - when: {eventName: [ConsoleLogin]}            # exact values
        match: {errorMessage: "(?i)failed"}          # or regular expressions
        set: {class_uid: 3002, category_uid: 3, activity_id: 1}
    statuses:                     # another list, read the same way (first rule that holds)
      - when: {errorCode: [AccessDenied]}
        set: {status_id: 2, status: Failure}
    fields:                       # OCSF name -> column, or columns tried in order
      actor.user.name: [userIdentity.userName, userIdentity.arn]
    extract:                      # OCSF name -> first group of a regex over a column
      user.name: {from: message, regex: "for (\\S+) from"}
    lookups:                      # OCSF name -> value of a column translated by a table
      status_id: {from: status, values: {success: 1, failure: 2}}
    constants: {metadata.product.name: CloudTrail}

Every OCSF column is text, like the original fields (``class_uid`` is ``"6003"``). ``type_uid``
is ``class_uid * 100 + activity_id`` and ``time`` the event time in epoch milliseconds, as OCSF
defines them. A column the event already has under an OCSF name keeps its value where it has one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import polars as pl
import yaml

from mamori.errors import MamoriError
from mamori.events import schema

IDS = ("class_uid", "category_uid", "activity_id")
RULE_LISTS = ("classes", "statuses", "activities", "dispositions")


@dataclass(frozen=True)
class ClassRule:
    """Ids set on events meeting every ``when`` (exact values) and ``match`` (regex) condition."""

    when: tuple[tuple[str, tuple[str, ...]], ...]
    match: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class OcsfTable:
    """How one source's events map onto OCSF (see the module docstring for the file format)."""

    source: str
    defaults: tuple[tuple[str, str], ...] = ()
    classes: tuple[tuple[ClassRule, ...], ...] = ()
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    extract: tuple[tuple[str, str, str], ...] = ()
    lookups: tuple[tuple[str, str, tuple[tuple[str, str], ...], str | None], ...] = ()
    constants: tuple[tuple[str, str], ...] = ()
    origin: str = field(default="", compare=False)


def _pairs(raw: Any, where: str, what: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MamoriError(f"'{what}' must be a map", where=where)
    return raw


def _listed(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def parse_table(text: str, where: str) -> OcsfTable:
    """Read one OCSF mapping file; errors name the file and the part that is wrong."""
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise MamoriError(f"not valid YAML: {exc}", where=where) from exc
    if not isinstance(data, dict) or "source" not in data:
        raise MamoriError("an OCSF mapping needs a 'source' name", where=where)
    classes = []
    for list_name in RULE_LISTS:
        rules = []
        for i, rule in enumerate(data.get(list_name) or []):
            here = f"{where}: {list_name}[{i}]"
            if not isinstance(rule, dict) or not isinstance(rule.get("set"), dict):
                raise MamoriError("each rule needs a 'set' map", where=here)
            rules.append(ClassRule(
                tuple((str(k), _listed(v)) for k, v in _pairs(rule.get("when"), here, "when").items()),
                tuple((str(k), str(v)) for k, v in _pairs(rule.get("match"), here, "match").items()),
                tuple((str(k), str(v)) for k, v in rule["set"].items()),
            ))
        if rules:
            classes.append(tuple(rules))
    extract = []
    for name, spec in _pairs(data.get("extract"), where, "extract").items():
        if not isinstance(spec, dict) or "from" not in spec or "regex" not in spec:
            raise MamoriError(f"extract {name!r} needs 'from' and 'regex'", where=where)
        extract.append((str(name), str(spec["from"]), str(spec["regex"])))
    lookups = []
    for name, spec in _pairs(data.get("lookups"), where, "lookups").items():
        if not isinstance(spec, dict) or "from" not in spec or not isinstance(spec.get("values"), dict):
            raise MamoriError(f"lookup {name!r} needs 'from' and a 'values' map", where=where)
        default = spec.get("default")
        lookups.append((str(name), str(spec["from"]),
                        tuple((str(k), str(v)) for k, v in spec["values"].items()),
                        None if default is None else str(default)))
    return OcsfTable(
        source=str(data["source"]),
        defaults=tuple((str(k), str(v)) for k, v in _pairs(data.get("defaults"), where, "defaults").items()),
        classes=tuple(classes),
        fields=tuple((str(k), _listed(v)) for k, v in _pairs(data.get("fields"), where, "fields").items()),
        extract=tuple(extract),
        lookups=tuple(lookups),
        constants=tuple((str(k), str(v)) for k, v in _pairs(data.get("constants"), where, "constants").items()),
        origin=where,
    )


@functools.cache
def builtin_tables() -> dict[str, OcsfTable]:
    """Load the OCSF mapping files shipped in ``mamori/events/ocsf``, by source name."""
    tables: dict[str, OcsfTable] = {}
    folder = resources.files("mamori.events") / "ocsf"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith((".yaml", ".yml")):
            table = parse_table(item.read_text("utf-8"), f"mamori/events/ocsf/{item.name}")
            tables[table.source] = table
    return tables


def _condition(frame: pl.DataFrame, rule: ClassRule) -> pl.Expr | None:
    expr: pl.Expr = pl.lit(True)
    for name, values in rule.when:
        if name not in frame.columns:
            return None
        expr = expr & pl.col(name).is_in(list(values)).fill_null(False)
    for name, pattern in rule.match:
        if name not in frame.columns:
            return None
        expr = expr & pl.col(name).str.contains(pattern).fill_null(False)
    return expr


def ocsf_exprs(frame: pl.DataFrame, table: OcsfTable) -> dict[str, pl.Expr]:
    """Return the expressions computing the OCSF columns of ``frame`` under ``table``."""
    out: dict[str, pl.Expr] = {}
    ids: dict[str, pl.Expr] = {k: pl.lit(v, dtype=pl.Utf8) for k, v in table.defaults}
    for rules in table.classes:
        for rule in reversed(rules):
            cond = _condition(frame, rule)
            if cond is None:
                continue
            for key, value in rule.values:
                base = ids.get(key, pl.lit(None, dtype=pl.Utf8))
                ids[key] = pl.when(cond).then(pl.lit(value, dtype=pl.Utf8)).otherwise(base)
    for name, column, pairs, default in table.lookups:
        if column not in frame.columns:
            if default is not None and name not in ids:
                ids[name] = pl.lit(default, dtype=pl.Utf8)
            continue
        mapped = pl.col(column).str.to_lowercase().replace_strict(
            {k.lower(): v for k, v in pairs}, default=None, return_dtype=pl.Utf8)
        fallback = ids.get(name, pl.lit(default, dtype=pl.Utf8))
        ids[name] = pl.coalesce(mapped, fallback)
    out.update(ids)
    if "class_uid" in ids and "activity_id" in ids:
        out["type_uid"] = (ids["class_uid"].cast(pl.Int64, strict=False) * 100
                           + ids["activity_id"].cast(pl.Int64, strict=False)).cast(pl.Utf8)
    for name, columns in table.fields:
        present = [c for c in columns if c in frame.columns]
        if present:
            out[name] = pl.coalesce([pl.col(c).cast(pl.Utf8) for c in present])
    for name, column, pattern in table.extract:
        if column in frame.columns:
            found = pl.col(column).str.extract(pattern, 1)
            out[name] = pl.coalesce(out[name], found) if name in out else found
    for name, value in table.constants:
        out[name] = pl.lit(value, dtype=pl.Utf8)
    if schema.TIME in frame.columns:
        out["time"] = pl.col(schema.TIME).dt.epoch("ms").cast(pl.Utf8)
    return out


def normalise(frame: pl.DataFrame, source: str, tables: dict[str, OcsfTable] | None = None) -> pl.DataFrame:
    """Return ``frame`` with the OCSF columns its source's table defines (unchanged without a table).

    Original fields are never replaced: where an event already carries an OCSF name (an OCSF JSON
    source, Azure's own ``time``), its value stays and the computed one only fills its nulls.
    """
    table = (tables if tables is not None else builtin_tables()).get(source)
    if table is None or frame.height == 0:
        return frame
    exprs = ocsf_exprs(frame, table)
    final = []
    for name, expr in exprs.items():
        if name == "time" and name in frame.columns:
            continue  # a source's own ``time`` field (Azure) is an original field: keep it whole
        if name in frame.columns:
            final.append(pl.coalesce(pl.col(name).cast(pl.Utf8), expr).alias(name))
        else:
            final.append(expr.alias(name))
    return frame.with_columns(final)
