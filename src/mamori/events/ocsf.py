"""Add OCSF-aligned normalised fields to an event batch, from per-source tables (data files).

Each ``events/ocsf/<source>.yaml`` says, for the events of one source::

    source: cloudtrail            # or a list of sources sharing one table: [evtx, winjson]
    defaults: {class_uid: 6003, category_uid: 6, activity_id: 0}
    classes:                      # the first rule that holds sets these ids
      - when: {eventName: [ConsoleLogin]}            # exact values (all the columns named must match)
        match: {errorMessage: "(?i)failed"}          # or regular expressions
        set: {class_uid: 3002, category_uid: 3, activity_id: 1}
        fields: {user.name: userName}                # fields this rule takes from its own columns
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
    blanks: ["-"]                 # values that mean "absent" in the ``fields`` columns
    x-shared: &shared {...}       # other keys are ignored: a place for YAML anchors rules share

In each list, the first rule that holds gives the values it names; a value it does not name keeps the
defaults (or the value of an earlier list), and a field a rule names comes from the rule's columns
only (null when they are), not from the table's ``fields``. Where a rule sets a value and a field
of the same name has one too, the event's own value wins.

Every OCSF column is text, like the original fields (``class_uid`` is ``"6003"``). ``type_uid`` is
``class_uid * 100 + activity_id`` and ``time`` the event time in epoch milliseconds, as OCSF
defines them. A column the event already has under an OCSF name keeps its value where it has one.

Speed (a Windows table has a hundred rules, a Windows batch hundreds of columns): rules with exact
values are one hash lookup per set of columns (the first rule's index for each combination of
values), not one condition per rule; each list's pick is computed once and the OCSF values read it;
when no rule has a regex, the ids are worked out once per distinct combination of the columns they
depend on and joined back; only the columns a table reads are touched; and a file is parsed only
when a batch of its source comes.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
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
    """Ids set on events meeting every ``when`` (exact values) and ``match`` (regex) condition, and
    the OCSF fields taken, on those events, from the rule's own columns."""

    when: tuple[tuple[str, tuple[str, ...]], ...]
    match: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()


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
    blanks: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # every source the table is for (``source`` first)
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
            if not isinstance(rule, dict) or not isinstance(rule.get("set", rule.get("fields")), dict):
                raise MamoriError("each rule needs a 'set' or 'fields' map", where=here)
            rules.append(ClassRule(
                tuple((str(k), _listed(v)) for k, v in _pairs(rule.get("when"), here, "when").items()),
                tuple((str(k), str(v)) for k, v in _pairs(rule.get("match"), here, "match").items()),
                tuple((str(k), str(v)) for k, v in _pairs(rule.get("set"), here, "set").items()),
                tuple((str(k), _listed(v)) for k, v in _pairs(rule.get("fields"), here, "fields").items()),
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
    sources = _listed(data["source"])
    if not sources:
        raise MamoriError("'source' names no source", where=where)
    return OcsfTable(
        source=sources[0],
        defaults=tuple((str(k), str(v)) for k, v in _pairs(data.get("defaults"), where, "defaults").items()),
        classes=tuple(classes),
        fields=tuple((str(k), _listed(v)) for k, v in _pairs(data.get("fields"), where, "fields").items()),
        extract=tuple(extract),
        lookups=tuple(lookups),
        constants=tuple((str(k), str(v)) for k, v in _pairs(data.get("constants"), where, "constants").items()),
        blanks=_listed(data["blanks"]) if data.get("blanks") is not None else (),
        sources=sources,
        origin=where,
    )


SOURCE_LINE = re.compile(r"^source:.*$", re.MULTILINE)


@functools.cache
def _shipped_files() -> dict[str, str]:
    """The shipped mapping files (``mamori/events/ocsf``) by name, with their text."""
    folder = resources.files("mamori.events") / "ocsf"
    return {item.name: item.read_text("utf-8") for item in sorted(folder.iterdir(), key=lambda p: p.name)
            if item.name.endswith((".yaml", ".yml"))}


@functools.cache
def _shipped_table(name: str) -> OcsfTable:
    return parse_table(_shipped_files()[name], f"mamori/events/ocsf/{name}")


@functools.cache
def _files_by_source() -> dict[str, str]:
    """Which shipped file maps which source, read from each file's ``source:`` line alone: YAML is
    slow to parse (about 1 ms a kilobyte, 25 ms for the Windows table), and a batch needs one table."""
    found: dict[str, str] = {}
    for name, text in _shipped_files().items():
        for source in _declared_sources(text) or _shipped_table(name).sources:
            found[source] = name
    return found


def _declared_sources(text: str) -> tuple[str, ...]:
    """The sources a mapping file's top-level ``source:`` line names (empty if it cannot tell)."""
    line = SOURCE_LINE.search(text)
    try:
        head = yaml.load(line.group(0), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if line else None
    except yaml.YAMLError:
        return ()
    return _listed(head["source"]) if isinstance(head, dict) and head.get("source") else ()


def table_for(source: str) -> OcsfTable | None:
    """The shipped OCSF mapping of one source (None without one), parsing that file only."""
    name = _files_by_source().get(source)
    return _shipped_table(name) if name is not None else None


@functools.cache
def builtin_tables() -> dict[str, OcsfTable]:
    """Load every OCSF mapping file shipped in ``mamori/events/ocsf``, by source name."""
    tables: dict[str, OcsfTable] = {}
    for name in _shipped_files():
        table = _shipped_table(name)
        for source in table.sources:
            tables[source] = table
    return tables


def ocsf_column_names() -> frozenset[str]:
    """Every column the shipped tables can add to a batch (parses every table: for checks and tests)."""
    names: set[str] = {*IDS, "type_uid", "time"}
    for table in builtin_tables().values():
        names.update(n for n, _ in table.defaults)
        names.update(n for rules in table.classes for rule in rules for n, _ in rule.values)
        names.update(n for rules in table.classes for rule in rules for n, _ in rule.fields)
        names.update(n for n, _ in table.fields)
        names.update(n for n, _, _ in table.extract)
        names.update(n for n, _, _, _ in table.lookups)
        names.update(n for n, _ in table.constants)
    return frozenset(names)


PICK = "__ocsf_rule_{}"  # the column holding, per event, the index of the first rule of a list that holds
KEY_SEPARATOR = "\x1f"


def _condition(rule: ClassRule) -> pl.Expr:
    expr: pl.Expr = pl.lit(True)
    for name, values in rule.when:
        expr = expr & pl.col(name).is_in(list(values)).fill_null(False)
    for name, pattern in rule.match:
        expr = expr & pl.col(name).str.contains(pattern).fill_null(False)
    return expr


def _first_rule(rules: tuple[ClassRule, ...], dtypes: Mapping[str, pl.DataType]) -> pl.Expr | None:
    """The index of the first rule that holds on each event (null where none does).

    Rules with exact values only on text columns become one lookup per set of columns, keyed by the
    columns' values joined; the others are conditions. A rule naming a column the batch lacks never
    holds."""
    lookups: dict[tuple[str, ...], dict[str, int]] = {}
    conditions: list[pl.Expr] = []
    for index, rule in enumerate(rules):
        names = [name for name, _ in rule.when] + [name for name, _ in rule.match]
        if any(name not in dtypes for name in names):
            continue
        if rule.when and not rule.match and all(dtypes[name] == pl.String for name in names):
            when = sorted(rule.when)
            lookup = lookups.setdefault(tuple(name for name, _ in when), {})
            for combination in itertools.product(*(values for _, values in when)):
                lookup.setdefault(KEY_SEPARATOR.join(combination), index)
        else:
            conditions.append(pl.when(_condition(rule)).then(pl.lit(index, dtype=pl.Int32)))
    parts = [(pl.col(columns[0]) if len(columns) == 1 else pl.concat_str(
        [pl.col(c) for c in columns], separator=KEY_SEPARATOR)).replace_strict(
        lookup, default=None, return_dtype=pl.Int32) for columns, lookup in lookups.items()]
    parts.extend(conditions)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else pl.min_horizontal(parts)


def _field(columns: tuple[str, ...], dtypes: Mapping[str, pl.DataType], blanks: tuple[str, ...]) -> pl.Expr:
    """The first non-null value among ``columns`` (those the batch has), blanks counting as null."""
    present = []
    for name in columns:
        if name not in dtypes:
            continue
        value = pl.col(name).cast(pl.Utf8)
        if len(blanks) == 1:
            value = pl.when(value != blanks[0]).then(value)
        elif blanks:
            value = pl.when(~value.is_in(list(blanks))).then(value)
        present.append(value)
    if not present:
        return pl.lit(None, dtype=pl.Utf8)
    return present[0] if len(present) == 1 else pl.coalesce(present)


def _rule_fields(pick: pl.Expr, rules: tuple[ClassRule, ...], fields: dict[str, pl.Expr],
                 dtypes: Mapping[str, pl.DataType], blanks: tuple[str, ...]) -> None:
    """Set, in ``fields``, the OCSF fields the rules of one list take from their own columns: the
    value of the first rule that holds where it names the field, else the table's own mapping."""
    owners: dict[str, dict[tuple[str, ...], list[int]]] = {}
    for index, rule in enumerate(rules):
        for name, columns in rule.fields:
            owners.setdefault(name, {}).setdefault(columns, []).append(index)
    for name, by_columns in owners.items():
        expr = fields.get(name, pl.lit(None, dtype=pl.Utf8))
        for columns, indexes in reversed(list(by_columns.items())):
            expr = pl.when(pick.is_in(indexes)).then(_field(columns, dtypes, blanks)).otherwise(expr)
        fields[name] = expr


@functools.cache
def _table_columns(table: OcsfTable) -> frozenset[str]:
    """Every column a table reads (the plan depends on which of them a batch has, and their types)."""
    names: set[str] = {schema.TIME}
    for rules in table.classes:
        for rule in rules:
            names.update(n for n, _ in rule.when)
            names.update(n for n, _ in rule.match)
            names.update(c for _, columns in rule.fields for c in columns)
    names.update(c for _, columns in table.fields for c in columns)
    names.update(c for _, c, _ in table.extract)
    names.update(c for _, c, _, _ in table.lookups)
    return frozenset(names)


def _relevant(table: OcsfTable, dtypes: Mapping[str, pl.DataType]) -> tuple[tuple[str, pl.DataType], ...]:
    wanted = _table_columns(table)
    return tuple((name, dtype) for name, dtype in dtypes.items() if name in wanted)


@dataclass(frozen=True)
class _Plan:
    """How to compute a table's OCSF columns on batches having certain columns, in two stages: the
    ids (rule picks, rule values, lookups: functions of a few columns) into ``_id(name)`` columns,
    then every OCSF column (which may read the ids)."""

    picks: dict[str, pl.Expr]
    ids: dict[str, pl.Expr]
    outputs: dict[str, pl.Expr]
    key: tuple[str, ...] | None  # the columns the ids depend on, when they are few-valued (no regex)


def _id(name: str) -> str:
    return f"__ocsf_id_{name}"


PLANS_KEPT = 16  # plans remembered (a few sources' usual column sets); each holds 0.2-0.4 MB of expressions


@functools.lru_cache(maxsize=PLANS_KEPT)
def _plan(table: OcsfTable, relevant: tuple[tuple[str, pl.DataType], ...]) -> _Plan:
    """The plan for batches having the ``relevant`` columns (cached: every batch of a single-format
    source has the same columns). A stream of mixed Windows events gives nearly every batch a column
    set of its own (its few rare events bring rare fields), so few plans are kept: building one takes
    about 5 ms, and 256 of them grew a parser process by some 100 MB."""
    dtypes = dict(relevant)
    picks: dict[str, pl.Expr] = {}
    key: set[str] = set()
    ids: dict[str, pl.Expr] = {k: pl.lit(v, dtype=pl.Utf8) for k, v in table.defaults}
    fields: dict[str, pl.Expr] = {}
    for name, columns in table.fields:
        if any(c in dtypes for c in columns):
            fields[name] = _field(columns, dtypes, table.blanks)
    for number, rules in enumerate(table.classes):
        first = _first_rule(rules, dtypes)
        if first is None:
            continue
        pick_name = PICK.format(number)
        picks[pick_name] = first
        key.update(first.meta.root_names())
        pick = pl.col(pick_name)
        given: dict[str, dict[int, str]] = {}
        for index, rule in enumerate(rules):
            for name, value in rule.values:
                given.setdefault(name, {})[index] = value
        for name, values in given.items():
            chosen = pick.replace_strict(values, default=None, return_dtype=pl.Utf8)
            ids[name] = pl.coalesce(chosen, ids[name]) if name in ids else chosen
        _rule_fields(pick, rules, fields, dtypes, table.blanks)
    for name, column, pairs, default in table.lookups:
        if column not in dtypes:
            if default is not None and name not in ids:
                ids[name] = pl.lit(default, dtype=pl.Utf8)
            continue
        key.add(column)
        looked_up = pl.col(column)
        if any(k.lower() != k.upper() for k, _ in pairs):  # keys with letters: compare case-blind
            looked_up = looked_up.str.to_lowercase()
        mapped = looked_up.replace_strict({k.lower(): v for k, v in pairs}, default=None, return_dtype=pl.Utf8)
        fallback = ids.get(name, pl.lit(default, dtype=pl.Utf8))
        ids[name] = pl.coalesce(mapped, fallback)
    computed = {name: pl.col(_id(name)) for name in ids}
    if "class_uid" in ids and "activity_id" in ids:
        ids["type_uid"] = (computed["class_uid"].cast(pl.Int64, strict=False) * 100
                           + computed["activity_id"].cast(pl.Int64, strict=False)).cast(pl.Utf8)
        computed["type_uid"] = pl.col(_id("type_uid"))
    for name, expr in fields.items():
        if name in computed:  # a value a rule sets stays where the event has none of its own
            fields[name] = pl.coalesce(expr, computed[name])
    outputs: dict[str, pl.Expr] = {**computed, **fields}
    for name, column, pattern in table.extract:
        if column in dtypes:
            found = pl.col(column).str.extract(pattern, 1)
            outputs[name] = pl.coalesce(outputs[name], found) if name in outputs else found
    for name, value in table.constants:
        outputs[name] = pl.lit(value, dtype=pl.Utf8)
    if schema.TIME in dtypes:
        outputs["time"] = pl.col(schema.TIME).dt.epoch("ms").cast(pl.Utf8)
    exact = not any(rule.match for rules in table.classes for rule in rules)
    return _Plan(picks, ids, outputs, tuple(sorted(key)) if exact and key else None)


KEY = "__ocsf_key"


def _with_ids(narrow: pl.DataFrame, plan: _Plan) -> pl.DataFrame:
    """``narrow`` with the plan's id columns. Where they depend on a few few-valued columns (a Windows
    batch has a hundred or so combinations of channel, event id and the like in 20,000 events), they
    are worked out once per combination, found by a 64-bit hash of the columns, and joined back."""
    names = {name: expr.alias(_id(name)) for name, expr in plan.ids.items()}
    type_uid = names.pop("type_uid", None)
    if plan.key is None:
        done = narrow.with_columns(**plan.picks).with_columns(list(names.values()))
        return done.with_columns(type_uid) if type_uid is not None else done
    columns = list(plan.key)
    hashed = (pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)).hash().alias(KEY)
    narrow = narrow.with_columns(hashed)
    combos = narrow.select(KEY, *columns).unique(subset=KEY)
    combos = combos.with_columns(**plan.picks).with_columns(list(names.values()))
    if type_uid is not None:
        combos = combos.with_columns(type_uid)
    combos = combos.select(KEY, *plan.picks, *(_id(n) for n in plan.ids))
    return narrow.join(combos, on=KEY, how="left", maintain_order="left")


def normalise(frame: pl.DataFrame, source: str, tables: dict[str, OcsfTable] | None = None) -> pl.DataFrame:
    """Return ``frame`` with the OCSF columns its source's table defines (unchanged without a table).

    Original fields are never replaced: where an event already carries an OCSF name (an OCSF JSON
    source, Azure's own ``time``), its value stays and the computed one only fills its nulls. Only the
    columns the table reads are touched (a Windows batch has hundreds), each computed value once."""
    table = tables.get(source) if tables is not None else table_for(source)
    if table is None or frame.height == 0:
        return frame
    dtypes = frame.schema
    plan = _plan(table, _relevant(table, dtypes))
    needed = set(_table_columns(table))
    narrow = _with_ids(frame.select([name for name in dtypes if name in needed]), plan)
    final = []
    for column in narrow.select([expr.alias(name) for name, expr in plan.outputs.items()]).get_columns():
        name = column.name
        if name in dtypes:
            if name == "time":
                continue  # a source's own ``time`` field (Azure) is an original field: keep it whole
            own = frame.get_column(name).cast(pl.Utf8)
            column = own.zip_with(own.is_not_null(), column)
        final.append(column)
    return frame.with_columns(final)
