"""Compare ``mamori hunt`` with a pySigma + SQLite reference on EVTX-ATTACK-SAMPLES, rule by rule and event by event.

Issue 2 quotes a peer tool that runs the SigmaHQ Windows rules through pySigma's SQLite backend (the way Zircolite
does): every rule becomes one SQL query, every EVTX record one row of a flat ``logs`` table whose columns are the
leaf names of the record (``System`` and ``EventData``/``UserData`` alike), and a rule's hits are the rows its query
selects. Zircolite's storage is copied too: empty values dropped, lists stored as their Python ``str()``, unnamed
``<Data>`` elements under ``Message``, NOCASE columns, REGEXP as ``re.search``.

This script builds that reference itself -- the same rules, read by pySigma, converted by ``pysigma-backend-sqlite``
(the ``peer`` extra), run over the records as the ``evtx`` package reads them -- and sets it against the detections
of ``mamori.hunt.run_hunt`` on the same folder. It prints the totals of both sides (distinct rules, distinct events,
rule-event pairs: the sum over rules of the events each matched, which is what Zircolite reports) and every
difference, grouped by its cause, with counts. A difference gets the first of these causes that holds: the
reference could not convert or place the rule; mamori's log-source table routes the event to the rule and the
profile does not (or the reverse); undoing Zircolite's storage (keeping empty values, joining lists, ``<Data>`` as
``Data``) flips the pair. What is left is a true matching difference ("MATCH SEMANTICS"), listed rule by rule: a
candidate engine bug. ``--output`` writes the per-rule table (TSV); ``--pairs`` every differing (rule, event) pair.

Profiles say how a rule's log source becomes SQL, as the published Zircolite rule sets do:

* ``sysmon`` (default): Sysmon categories -> ``Channel`` Sysmon + their event ids, services -> their channel (from
  pySigma's own ``windows_logsource_mapping``), PowerShell categories -> channel + event id. A rule whose log source
  the profile cannot place is left out, as Zircolite-Rules-v2 does.
* ``generic``: as ``sysmon`` but ``process_creation`` is Security 4688 with its field names.
* ``native``: no pipeline, so the log source is ignored (Zircolite given a folder of YAML rules and no ``-p``).

The pipelines are written here from those sources' documented mappings, because ``pysigma-pipeline-sysmon`` and
``pysigma-pipeline-windows`` on PyPI still require pySigma < 2.

    pip install -e '.[peer]'
    python benchmarks/peer_diff.py [--profile sysmon|generic|native] [--keywords] [--output F.tsv] [--pairs F.tsv]
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import evtx
from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.pipelines.common import windows_logsource_mapping
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, FieldMappingTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaNull

from mamori.detect.attack import tactics_of
from mamori.events.logsources import LogSource, MappingEntry, builtin_table
from mamori.hunt import run_hunt

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PEER_RULES, PEER_EVENTS = 330, 1186  # what issue 2 says the peer reported

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"
# Sysmon event ids of each Sigma category (Sysmon's documented event ids).
SYSMON_EVENT_IDS: dict[str, list[str]] = {
    "process_creation": ["1"], "file_change": ["2"], "network_connection": ["3"], "sysmon_status": ["4", "16"],
    "process_termination": ["5"], "driver_load": ["6"], "image_load": ["7"], "create_remote_thread": ["8"],
    "raw_access_thread": ["9"], "process_access": ["10"], "file_event": ["11"], "registry_add": ["12"],
    "registry_delete": ["12"], "registry_set": ["13"], "registry_rename": ["14"],
    "registry_event": ["12", "13", "14"], "create_stream_hash": ["15"], "pipe_created": ["17", "18"],
    "wmi_event": ["19", "20", "21"], "dns_query": ["22"], "file_delete": ["23", "26"], "clipboard_capture": ["24"],
    "process_tampering": ["25"], "file_delete_detected": ["26"], "file_block_executable": ["27"],
    "file_block_shredding": ["28"], "file_executable_detected": ["29"], "sysmon_error": ["255"],
}
PS_CHANNELS = ["Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"]
POWERSHELL_CATEGORIES: dict[str, tuple[list[str], str]] = {
    "ps_module": (PS_CHANNELS, "4103"), "ps_script": (PS_CHANNELS, "4104"),
    "ps_classic_start": (["Windows PowerShell"], "400"), "ps_classic_provider_start": (["Windows PowerShell"], "600"),
    "ps_classic_script": (["Windows PowerShell"], "800"),
}
# Security 4688 names of Sysmon process_creation fields (the generic profile).
AUDIT_PROCESS_FIELDS = {"Image": "NewProcessName", "ParentImage": "ParentProcessName", "User": "SubjectUserName",
                        "LogonId": "SubjectLogonId", "ProcessId": "NewProcessId", "ParentProcessId": "ProcessId",
                        "IntegrityLevel": "MandatoryLabel"}
# Leaf paths that Zircolite's field mappings rename when it flattens a record; every other leaf keeps its own
# name. Unnamed <Data> elements (EventData.Data.#text) become ``Message``.
LEAF_RENAMES: dict[tuple[str, ...], str] = {("Provider", "Name"): "Provider_Name", ("Provider", "Guid"): "Guid",
                                            ("EventID", "#text"): "EventID", ("EventID", "Qualifiers"): "Qualifiers",
                                            ("Data", "#text"): "Message"}
TABLE_PREFIX = "SELECT * FROM logs WHERE "
TEXT_FIELD = "_text"  # the column keyword rules search with --keywords


# ---------------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class EventKey:
    """Where an event is: its file (relative to the samples folder) and its EventRecordID."""

    file: str
    record: int


def flatten(node: Any, path: tuple[str, ...], out: dict[str, Any]) -> None:
    """Flatten one evtx JSON record the way Zircolite does: each leaf becomes a column named by its last key
    (``#attributes`` and ``#text`` stand for their parent). Values stay as read; ``peer_row`` applies the rest."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "#attributes":
                flatten(value, path, out)
            else:
                flatten(value, (*path, key), out)
        return
    if node is None or not path or path[-1] == "xmlns":
        return
    name = LEAF_RENAMES.get(path[-2:]) or (path[-2] if path[-1] == "#text" and len(path) > 1 else path[-1])
    out[re.sub(r"[^0-9A-Za-z_]", "", name) or name] = node


def peer_row(raw: dict[str, Any]) -> dict[str, Any]:
    """A flattened record as Zircolite stores it: empty strings dropped, a list stored as its Python ``str()``
    (so each backslash doubled), booleans as ``'true'``/``'false'``, integers past 64 bits as REAL."""
    row: dict[str, Any] = {}
    for name, value in raw.items():
        if value == "":
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = str(value)
        elif isinstance(value, int) and not -(1 << 63) <= value < (1 << 63):
            value = float(value)
        row[name] = value
    return row


def with_text(row: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The row plus ``TEXT_FIELD``: every value of the record, one a line, for keyword (fieldless) rules."""
    lines = [str(x) for v in raw.values() for x in (v if isinstance(v, list) else [v]) if x not in (None, "")]
    return {**row, TEXT_FIELD: "\n".join(lines)}


def plain_row(raw: dict[str, Any]) -> dict[str, Any]:
    """The same record with empty strings kept, a list's items joined by newlines and unnamed <Data> under
    ``Data`` (as mamori's reader has them): the what-if that tells a Zircolite storage quirk from a matching
    difference."""
    row = peer_row({k: v for k, v in raw.items() if v != "" and not isinstance(v, list)})
    row.update({k: v for k, v in raw.items() if v == ""})
    row.update({k: "\n".join("" if x is None else str(x) for x in v) for k, v in raw.items() if isinstance(v, list)})
    if "Message" in row and "Data" not in row:
        row["Data"] = row.pop("Message")
    return row


def read_events(samples: Path) -> dict[EventKey, dict[str, Any]]:
    """Every record of every EVTX file under ``samples``, flattened (raw values), by file and EventRecordID."""
    events: dict[EventKey, dict[str, Any]] = {}
    for path in sorted(samples.rglob("*.evtx")):
        rel = path.relative_to(samples).as_posix()
        for record in evtx.PyEvtxParser(str(path)).records_json():
            if record is None:
                continue
            data: dict[str, Any] = json.loads(str(record["data"]))
            row: dict[str, Any] = {}
            flatten(data, (), row)
            # the System EventRecordID, not the chunk header's record number, which these exports renumber
            events[EventKey(rel, int(data["Event"]["System"]["EventRecordID"]))] = row
    return events


def regexp(pattern: str, value: Any) -> bool:
    """SQLite's REGEXP operator, as Zircolite defines it: Python ``re.search`` on the text of the value."""
    return value is not None and re.search(pattern, str(value)) is not None


def connect() -> sqlite3.Connection:
    """An in-memory SQLite database with the REGEXP function the backend's queries call."""
    conn = sqlite3.connect(":memory:")
    conn.create_function("regexp", 2, regexp, deterministic=True)
    return conn


def load_table(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Load flattened events into a ``logs`` table, one NOCASE column per leaf name (typed by its first value),
    ``row_id`` being the index in ``rows``."""
    columns: dict[str, str] = {}
    for row in rows:
        for name, value in row.items():
            if name.lower() not in columns:
                columns[name.lower()] = "INTEGER" if isinstance(value, int) else "TEXT"
    names = sorted(columns)
    conn.execute("CREATE TABLE logs (row_id INTEGER PRIMARY KEY"
                 + "".join(f', "{n}" {columns[n]} COLLATE NOCASE' for n in names) + ")")
    index = {n: i for i, n in enumerate(names)}
    values = []
    for row_id, row in enumerate(rows):
        line: list[Any] = [None] * len(names)
        for name, value in row.items():
            line[index[name.lower()]] = value
        values.append((row_id, *line))
    conn.executemany(f"INSERT INTO logs VALUES ({', '.join('?' * (len(names) + 1))})", values)


def row_matches(wheres: list[str], fields: list[str], row: dict[str, Any]) -> bool:
    """Whether one flattened event, alone in a table of its own, satisfies any of a rule's queries."""
    conn = connect()
    load_table(conn, [row])
    ensure_columns(conn, fields)
    return any(conn.execute(f"SELECT 1 FROM logs WHERE {w}").fetchone() for w in wheres)


def ensure_columns(conn: sqlite3.Connection, fields: Iterable[str]) -> None:
    """Add the fields a query needs and no event has, as NULL columns (what the backend's runtime does)."""
    have = {row[1].lower() for row in conn.execute("PRAGMA table_info(logs)")}
    for name in fields:
        if name.lower() not in have:
            conn.execute(f'ALTER TABLE logs ADD COLUMN "{name}" TEXT COLLATE NOCASE')
            have.add(name.lower())


# ---------------------------------------------------------------------------------------------------- rules


def condition_item(name: str, conditions: dict[str, str | list[str]], **logsource: str) -> ProcessingItem:
    """A pipeline item that adds ``conditions`` to the rules of one Windows log source."""
    return ProcessingItem(AddConditionTransformation(dict(conditions)), identifier=name,
                          rule_conditions=[LogsourceCondition(product="windows", **logsource)])


def profile_pipeline(profile: str) -> ProcessingPipeline | None:
    """The processing pipeline that turns a rule's log source into conditions, for one profile."""
    if profile == "native":
        return None
    items: list[ProcessingItem] = []
    if profile == "generic":
        audit_fields: dict[str | None, str | list[str]] = {k: v for k, v in AUDIT_PROCESS_FIELDS.items()}
        items.append(ProcessingItem(
            FieldMappingTransformation(audit_fields), identifier="audit_process_fields",
            rule_conditions=[LogsourceCondition(product="windows", category="process_creation")]))
        items.append(condition_item("audit_4688", {"Channel": "Security", "EventID": "4688"},
                                    category="process_creation"))
    for category, ids in SYSMON_EVENT_IDS.items():
        if not (profile == "generic" and category == "process_creation"):
            items.append(condition_item(f"sysmon_{category}", {"Channel": SYSMON_CHANNEL, "EventID": list(ids)},
                                        category=category))
    for category, (channels, event_id) in POWERSHELL_CATEGORIES.items():
        items.append(condition_item(f"ps_{category}", {"Channel": list(channels), "EventID": event_id},
                                    category=category))
    for service, channel in windows_logsource_mapping.items():
        items.append(condition_item(f"service_{service}",
                                    {"Channel": channel if isinstance(channel, str) else list(channel)},
                                    service=service))
    return ProcessingPipeline(name=f"peer_diff {profile}", items=items)


def detection_items(detection: SigmaDetection | SigmaDetectionItem) -> Iterator[SigmaDetectionItem]:
    """Every field-value item of a detection."""
    if isinstance(detection, SigmaDetectionItem):
        yield detection
        return
    for item in detection.detection_items:
        yield from detection_items(item)


def detection_fields(detection: SigmaDetection | SigmaDetectionItem) -> Iterator[str]:
    """Every field name a detection names."""
    return (item.field for item in detection_items(detection) if item.field)


def null_fields(rule: SigmaRule) -> set[str]:
    """The fields a rule compares with ``null``."""
    return {item.field.lower() for d in rule.detection.detections.values() for item in detection_items(d)
            if item.field and any(isinstance(v, SigmaNull) for v in item.value)}


def placed(rule: SigmaRule, profile: str) -> bool:
    """Whether the profile can place the rule's log source (Zircolite-Rules-v2 leaves the others out)."""
    if profile == "native":
        return True
    if any(f == "Channel" for d in rule.detection.detections.values() for f in detection_fields(d)):
        return True
    source = rule.logsource
    if source.category is None and source.service is None:
        return True
    if source.service is not None:
        return source.service in windows_logsource_mapping
    return source.category in SYSMON_EVENT_IDS or source.category in POWERSHELL_CATEGORIES


@dataclass
class Ruleset:
    """The rules converted for one profile, and what became of the others."""

    queries: dict[str, list[str]] = field(default_factory=dict)  # rule id -> SQL (WHERE part)
    fields: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, SigmaRule] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # rule id -> conversion error
    unplaced: set[str] = field(default_factory=set)
    duplicate_of: dict[str, str] = field(default_factory=dict)
    correlations: int = 0


def convert(rules: Path, profile: str, keywords: bool) -> Ruleset:
    """Convert every Sigma rule under ``rules`` with the sqlite backend, as Zircolite builds a ruleset; keyword
    rules only convert with ``keywords`` (a text column of all values; Zircolite's rule sets have none)."""
    collection = SigmaCollection.load_ruleset([rules], collect_errors=True)
    options = {"fulltext_field": TEXT_FIELD} if keywords else {}
    backend = sqliteBackend(  # type: ignore[no-untyped-call]
        profile_pipeline(profile), timestamp_field="SystemTime", event_id_field="row_id", **options)
    out = Ruleset()
    seen: dict[tuple[str, ...], str] = {}
    for rule in collection.rules:
        if isinstance(rule, SigmaCorrelationRule):
            out.correlations += 1
            continue
        rid = str(rule.id)
        out.meta[rid] = rule
        if rule.errors:
            out.failed[rid] = f"{type(rule.errors[0]).__name__}: {rule.errors[0]}"
            continue
        if not placed(rule, profile):
            out.unplaced.add(rid)
            continue
        try:
            entries = backend.convert_rule(rule, "zircolite")  # type: ignore[no-untyped-call]
        except Exception as exc:  # any conversion error leaves the rule out, as in Zircolite
            out.failed[rid] = f"{type(exc).__name__}: {exc}"
            continue
        sql = tuple(e["rule"][0] for e in entries)
        if sql in seen:  # Zircolite keeps one rule per distinct query
            out.duplicate_of[rid] = seen[sql]
            continue
        seen[sql] = rid
        out.queries[rid] = [s.removeprefix(TABLE_PREFIX) for s in sql]
        out.fields[rid] = sorted({f for e in entries for f in e.get("required_fields", [])})
    return out


def run_queries(conn: sqlite3.Connection, keys: list[EventKey], ruleset: Ruleset) -> tuple[
        dict[str, set[EventKey]], dict[str, str]]:
    """Run every converted rule; its hits, and the rules whose SQL SQLite refused."""
    hits: dict[str, set[EventKey]] = {}
    errors: dict[str, str] = {}
    for rid, wheres in ruleset.queries.items():
        ensure_columns(conn, ruleset.fields[rid])
        found: set[EventKey] = set()
        try:
            for where in wheres:
                found.update(keys[r[0]] for r in conn.execute(f"SELECT row_id FROM logs WHERE {where}"))
        except sqlite3.Error as exc:
            errors[rid] = f"{type(exc).__name__}: {exc}"
            continue
        if found:
            hits[rid] = found
    return hits, errors


# ---------------------------------------------------------------------------------------------------- ours


@dataclass(frozen=True)
class Ours:
    """What ``mamori hunt`` found: hits per rule, the rules it loaded, refused, and correlation detections."""

    hits: dict[str, set[EventKey]]
    loaded: int
    refused: dict[str, str]
    correlation_detections: int
    events: int


def run_ours(samples: Path, rules: Path) -> Ours:
    """Run ``mamori hunt`` in-process and key its detections like the reference's."""
    result = run_hunt([samples], [rules], explain_matches=False)
    hits: dict[str, set[EventKey]] = defaultdict(set)
    correlations = 0
    for d in result.detections:
        if d.get("event_uid") is None:
            correlations += 1
            continue
        rel = Path(d["source_file"]).resolve().relative_to(samples.resolve()).as_posix()
        hits[d["rule_id"]].add(EventKey(rel, int(d["record_id"])))
    refused = {r.rule_id: r.reason for r in result.refused} if result.refused else {}
    return Ours(dict(hits), result.rules_loaded, refused, correlations, result.events)


# ---------------------------------------------------------------------------------------------------- causes


def served_by(table_entries: tuple[MappingEntry, ...], row: dict[str, Any]) -> list[MappingEntry]:
    """The Windows mapping entries of mamori's log-source table that an event meets."""
    lowered = {k.lower(): v for k, v in row.items()}
    return [e for e in table_entries if "evtx" in e.sources
            and all(str(lowered.get(f.lower(), "")) in vals for f, vals in e.when)]


def rule_source(rule: SigmaRule) -> LogSource:
    """A rule's log source as mamori's table names it."""
    s = rule.logsource
    return LogSource(s.product, s.category, s.service)


@dataclass(frozen=True)
class Diff:
    """One differing (rule, event) pair and why it differs."""

    rule: str
    key: EventKey
    side: str  # "reference" or "mamori": the side that fires
    cause: str


@dataclass(frozen=True)
class Sides:
    """What ``classify`` looks at: both rulesets, the raw events and mamori's result."""

    ref: Ruleset
    native: Ruleset
    events: dict[EventKey, dict[str, Any]]
    ours: Ours
    quirks: bool = True  # the reference's table stores events as Zircolite does (else as ``plain_row``)


def storage_quirk(rid: str, rules: Ruleset, raw: dict[str, Any], fires_in_peer_table: bool) -> str | None:
    """The Zircolite storage quirk that flips the rule on this event, if the plain-row what-if flips it."""
    if rid not in rules.queries or row_matches(rules.queries[rid], rules.fields[rid], with_text(plain_row(raw), raw)) \
            != fires_in_peer_table:
        fields = {f.lower() for f in rules.fields.get(rid, [])}
        lists = sorted(k for k, v in raw.items() if isinstance(v, list) and k.lower() in fields)
        empties = sorted(k for k, v in raw.items() if v == "" and k.lower() in fields)
        if "data" in fields and "Message" in raw and "Data" not in raw:
            return "peer stores unnamed <Data> under Message (Zircolite's field mapping), so `Data` cannot match"
        if lists:
            return f"peer stores list field {'/'.join(lists)} as Python str() (backslashes doubled)"
        if empties:
            return f"peer drops empty value of {'/'.join(empties)} (so `field: ''` cannot match)"
        return "peer storage (empty values dropped / lists as str())"
    return None


def classify(rid: str, key: EventKey, side: str, sides: Sides) -> str:
    """Name the cause of one differing pair, from the most to the least mechanical explanation."""
    ref, native = sides.ref, sides.native
    rule = ref.meta.get(rid) or native.meta.get(rid)
    raw = sides.events.get(key)
    if rule is None:
        return "rule not read by pySigma"
    if raw is None:
        return ("event of a non-EVTX file (the reference reads EVTX only)" if not key.file.endswith(".evtx")
                else "event not in the reference (evtx read differs)")
    row = with_text(peer_row(raw) if sides.quirks else plain_row(raw), raw)
    wanted = rule_source(rule)
    mamori_routes = [e for e in served_by(builtin_table().entries, row) if e.covers(wanted)]
    if side == "mamori":
        if rid in ref.failed:
            return f"backend cannot convert: {ref.failed[rid].split(':')[0]}"
        if rid in ref.unplaced:
            return f"profile cannot place log source {wanted.label()}"
        if rid in ref.duplicate_of:
            return "reference keeps one rule per identical query (duplicate dropped)"
        fires_natively = rid in native.queries and row_matches(native.queries[rid], native.fields[rid], row)
        aliased = [e for e in mamori_routes if e.fields]
        if aliased and not fires_natively:
            return (f"log source: mamori serves {wanted.label()} from "
                    + " ".join(v[0] for _, v in aliased[0].when) + " with field aliases; the profile does not")
        if fires_natively:
            return (f"log source: mamori routes {row.get('Channel')} {row.get('EventID')} to {wanted.label()}; "
                    "the profile's conditions exclude it")
        quirk = sides.quirks and storage_quirk(rid, ref, raw, False)
        if quirk:
            return quirk
        empty_nulls = sorted(k for k, v in raw.items() if v == "" and k.lower() in null_fields(rule))
        if empty_nulls:
            return (f"`{'/'.join(empty_nulls)}: null` on an empty value (the spec leaves null to the backend): "
                    "mamori matches it, SQL IS NULL does not")
        return "MATCH SEMANTICS: mamori fires, SQL does not"
    if rid in sides.ours.refused:
        return f"mamori refuses the rule: {sides.ours.refused[rid]}"
    if not mamori_routes:
        return f"log source: the profile runs {wanted.label()} rules on events mamori does not route to it"
    return (sides.quirks and storage_quirk(rid, ref, raw, True)) or "MATCH SEMANTICS: SQL fires, mamori does not"


# ---------------------------------------------------------------------------------------------------- report


def totals(hits: dict[str, set[EventKey]]) -> tuple[int, int, int, int]:
    """Distinct rules, distinct events, rule-event pairs and files of a set of hits."""
    events = set().union(*hits.values()) if hits else set()
    return len(hits), len(events), sum(len(v) for v in hits.values()), len({k.file for k in events})


def rule_tactics(rule: SigmaRule | None) -> list[str]:
    """The ATT&CK tactics a rule's tags name, as mamori reads them."""
    return [t.tag for t in tactics_of([str(tag) for tag in rule.tags])] if rule else []


def print_totals(label: str, hits: dict[str, set[EventKey]]) -> None:
    """One line of totals."""
    rules, events, pairs, files = totals(hits)
    print(f"{label}: {rules} rules fire, {events:,} distinct events, {pairs:,} rule-event pairs, {files} files")


def print_by_tactic(ref: Ruleset, ref_hits: dict[str, set[EventKey]], ours: Ours) -> None:
    """Rule-event pairs by the tactic of the rule, both sides."""
    counts: dict[str, Counter[str]] = {"reference": Counter(), "mamori": Counter()}
    for side, hits in (("reference", ref_hits), ("mamori", ours.hits)):
        for rid, keys in hits.items():
            for tactic in rule_tactics(ref.meta.get(rid)):
                counts[side][tactic] += len(keys)
    names = sorted(set(counts["reference"]) | set(counts["mamori"]), key=lambda t: -counts["mamori"][t])
    print("pairs by tactic (reference/mamori): "
          + ", ".join(f"{t} {counts['reference'][t]}/{counts['mamori'][t]}" for t in names))


def print_left_out(ref: Ruleset, ours: Ours) -> None:
    """The rules the reference could not run, and whether mamori fires them."""
    for label, ids in (("not converted", set(ref.failed)), ("log source not placed", ref.unplaced),
                       ("duplicate query", set(ref.duplicate_of))):
        for rid in sorted(ids, key=lambda i: ref.meta[i].title):
            why = ref.failed.get(rid, "").split(":")[0] or ref.duplicate_of.get(rid, "")
            print(f"  {label}: {rid} {ref.meta[rid].title} [{rule_source(ref.meta[rid]).label()}] {why} "
                  f"(mamori fires on {len(ours.hits.get(rid, ()))} events)")


def print_causes(diffs: list[Diff], ref: Ruleset, ref_hits: dict[str, set[EventKey]], ours: Ours) -> None:
    """Every differing pair, grouped by side and cause, with counts; the rules of unexplained groups in full."""
    for side in ("reference", "mamori"):
        group_of_side = [d for d in diffs if d.side == side]
        print(f"\npairs only {side} fires: {len(group_of_side)} (rules {len({d.rule for d in group_of_side})})")
        by_cause: dict[str, list[Diff]] = defaultdict(list)
        for d in group_of_side:
            by_cause[d.cause].append(d)
        other = ours.hits if side == "reference" else ref_hits
        for cause, group in sorted(by_cause.items(), key=lambda kv: -len(kv[1])):
            per_rule = Counter(d.rule for d in group)
            alone = sum(1 for rid in per_rule if not other.get(rid))
            print(f"  {len(group):5} pairs, {len(per_rule):3} rules ({alone} fire only here): {cause}")
            if cause.startswith("MATCH SEMANTICS"):
                for rid, n in per_rule.most_common():
                    rule = ref.meta.get(rid)
                    sample = next(d.key for d in group if d.rule == rid)
                    print(f"        {rid} x{n} {rule.title if rule else ''} e.g. {sample.file}#{sample.record}")


def write_rules(path: Path, ref: Ruleset, ref_hits: dict[str, set[EventKey]], ours: Ours,
                diffs: list[Diff]) -> None:
    """The per-rule table: events each side fires on, the differences and their causes."""
    causes: dict[str, Counter[str]] = defaultdict(Counter)
    for d in diffs:
        causes[d.rule][d.cause] += 1
    with path.open("w", encoding="utf-8") as out:
        out.write("rule_id\ttitle\tlogsource\ttactics\treference_events\tmamori_events\tonly_reference\t"
                  "only_mamori\treference_status\tcauses\n")
        for rid in sorted(set(ref.meta) | set(ours.hits)):
            rule = ref.meta.get(rid)
            theirs, mine = ref_hits.get(rid, set()), ours.hits.get(rid, set())
            status = ("converted" if rid in ref.queries else "failed" if rid in ref.failed else
                      "unplaced" if rid in ref.unplaced else "duplicate" if rid in ref.duplicate_of else "-")
            out.write("\t".join([
                rid, rule.title if rule else "", rule_source(rule).label() if rule else "",
                ",".join(rule_tactics(rule)), str(len(theirs)), str(len(mine)), str(len(theirs - mine)),
                str(len(mine - theirs)), status, "; ".join(f"{c} x{n}" for c, n in causes[rid].most_common()),
            ]) + "\n")


def write_pairs(path: Path, diffs: list[Diff], plain_diffs: list[Diff]) -> None:
    """Every differing (rule, event) pair, against the reference as Zircolite stores events and without its
    storage quirks, with the side that fires and the cause."""
    with path.open("w", encoding="utf-8") as out:
        out.write("reference\trule_id\tfile\trecord\tfires_on\tcause\n")
        for label, group in (("zircolite", diffs), ("plain", plain_diffs)):
            for d in group:
                out.write(f"{label}\t{d.rule}\t{d.key.file}\t{d.key.record}\t{d.side}\t{d.cause}\n")


def differences(ref_hits: dict[str, set[EventKey]], sides: Sides) -> list[Diff]:
    """Every (rule, event) pair that one side fires and the other does not, with its cause."""
    ours = sides.ours.hits
    return [Diff(rid, key, side, classify(rid, key, side, sides))
            for rid in sorted(set(ref_hits) | set(ours))
            for side, only in (("reference", ref_hits.get(rid, set()) - ours.get(rid, set())),
                               ("mamori", ours.get(rid, set()) - ref_hits.get(rid, set())))
            for key in sorted(only, key=lambda k: (k.file, k.record))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--profile", choices=["sysmon", "generic", "native"], default="sysmon")
    parser.add_argument("--keywords", action="store_true",
                        help="convert keyword rules too, searching a column of all the record's values")
    parser.add_argument("--output", type=Path, help="write the per-rule table (TSV) here")
    parser.add_argument("--pairs", type=Path, help="write every differing (rule, event) pair (TSV) here")
    parser.add_argument("--samples", type=Path, default=DATA / "evtx-attack-samples")
    parser.add_argument("--rules", type=Path, default=DATA / "sigmahq" / "rules" / "windows")
    args = parser.parse_args()
    if not args.samples.exists() or not args.rules.exists():
        sys.exit(f"needs {args.samples} and {args.rules}")

    events = read_events(args.samples)
    keys = list(events)
    ref = convert(args.rules, args.profile, args.keywords)
    native = ref if args.profile == "native" else convert(args.rules, "native", args.keywords)
    conn, plain_conn = connect(), connect()
    load_table(conn, [with_text(peer_row(raw), raw) for raw in events.values()])
    load_table(plain_conn, [with_text(plain_row(raw), raw) for raw in events.values()])
    ref_hits, sql_errors = run_queries(conn, keys, ref)
    plain_hits, _ = run_queries(plain_conn, keys, ref)
    ours = run_ours(args.samples, args.rules)

    sides = Sides(ref, native, events, ours)
    diffs = differences(ref_hits, sides)
    plain_diffs = differences(plain_hits, Sides(ref, native, events, ours, quirks=False))

    print(f"events: reference {len(events):,} (EVTX), mamori {ours.events:,} (all files)")
    print(f"rules: read by pySigma {len(ref.meta)} (+{ref.correlations} correlations); profile {args.profile}: "
          f"converted {len(ref.queries)}, not converted {len(ref.failed)}, log source not placed "
          f"{len(ref.unplaced)}, duplicate query {len(ref.duplicate_of)}, SQL error {len(sql_errors)}; "
          f"mamori loaded {ours.loaded}, refused {len(ours.refused)}")
    print_totals("reference", ref_hits)
    print_totals("reference without Zircolite's storage quirks", plain_hits)
    print_totals("mamori", ours.hits)
    print(f"peer (issue 2): {PEER_RULES} rules, {PEER_EVENTS:,} events; mamori correlation detections "
          f"(not compared): {ours.correlation_detections}")
    print_by_tactic(ref, ref_hits, ours)
    print_left_out(ref, ours)
    both = set(ref_hits) & set(ours.hits)
    print(f"\nrules firing on both sides: {len(both)}; only reference: {len(set(ref_hits) - both)}; "
          f"only mamori: {len(set(ours.hits) - both)}")
    print_causes(diffs, ref, ref_hits, ours)
    print("\n-- mamori against the reference without Zircolite's storage quirks "
          "(empty values kept, lists joined, <Data> as Data):")
    print_causes(plain_diffs, ref, plain_hits, ours)
    if args.output:
        write_rules(args.output, ref, ref_hits, ours, diffs)
        print(f"\nper-rule table: {args.output}")
    if args.pairs:
        write_pairs(args.pairs, diffs, plain_diffs)
        print(f"differing pairs: {args.pairs}")


if __name__ == "__main__":
    main()
