"""Read playbook YAML files into ``Playbook`` values; refuse bad files with the file, field and reason.

A folder is loaded file by file: a bad file is refused (every problem found is reported, each naming
its field, e.g. ``actions[2].retry.max_attempts``) and the good files still load. The format::

    name: notify-high-incidents
    description: ...
    enabled: true
    trigger:
      events: [incident.created, incident.updated]
      level: {at_least: high}          # or {exact: medium}, or just "high" (at least)
      tags: [attack.credential_access] # any of these tags / tactics / techniques
      rule_ids: [...]                  # any of these Sigma rule ids
      entities: {ip: [10.0.0.5]}       # any of these entity values
      on_playbook_changes: false       # start also on changes made by playbooks (default: no, no loops)
      cooldown_seconds: 600            # at most one run per incident (or alert) in 10 minutes (default: 0, off)
    conditions:                        # optional; all / any, nested freely
      all:
        - {path: incident.status, equals: new}
        - {path: incident.alert_count, gte: 2}
    actions:
      - name: slack
        type: webhook                  # webhook, email, command, add_to_list, set_severity, set_status, open_incident
        approval: required             # optional: wait for an analyst
        retry: {max_attempts: 3, base_delay: 2}
        timeout: 30
        ...                            # the type's own fields
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from mamori.cases.events import KINDS
from mamori.cases.playbooks.actions import ACTION_TYPES
from mamori.cases.playbooks.model import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    LEVELS,
    OPERATORS,
    ActionSpec,
    Comparison,
    ConditionGroup,
    LevelMatch,
    Library,
    Playbook,
    Refusal,
    RetryPolicy,
    Trigger,
)
from mamori.cases.playbooks.templates import ENV_PLACEHOLDER, template_error

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
TOP_KEYS = {"name", "description", "enabled", "trigger", "conditions", "actions"}
TRIGGER_KEYS = {"events", "level", "tags", "rule_ids", "entities", "on_playbook_changes", "cooldown_seconds"}
COMMON_ACTION_KEYS = {"name", "type", "approval", "retry", "timeout", "on_failure", "description"}
MAX_ATTEMPTS_LIMIT = 20
SUFFIXES = (".yaml", ".yml")


class _Problems:
    """Collects (field, reason) pairs for one file."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, reason: str) -> None:
        self.items.append((field, reason))


def _strings(value: Any, field: str, problems: _Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int | float):
        return (str(value),)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return tuple(str(v) for v in value)
    problems.add(field, "give a string or a list of strings")
    return ()


def _trigger(raw: Any, problems: _Problems) -> Trigger:
    if not isinstance(raw, dict):
        problems.add("trigger", "a playbook needs a trigger mapping (with at least events)")
        return Trigger(events=())
    for key in sorted(set(raw) - TRIGGER_KEYS):
        problems.add(f"trigger.{key}", f"unknown key; known: {', '.join(sorted(TRIGGER_KEYS))}")
    events = _strings(raw.get("events"), "trigger.events", problems)
    if not events:
        problems.add("trigger.events", f"name at least one event kind: {', '.join(KINDS)}")
    for index, kind in enumerate(events):
        if kind not in KINDS:
            problems.add(f"trigger.events[{index}]", f"unknown event kind {kind!r}; use {', '.join(KINDS)}")
    level: str | None = None
    match: LevelMatch = "at_least"
    raw_level = raw.get("level")
    if isinstance(raw_level, str):
        level = raw_level
    elif isinstance(raw_level, dict) and len(raw_level) == 1:
        key, value = next(iter(raw_level.items()))
        level = str(value)
        if key == "exact":
            match = "exact"
        elif key != "at_least":
            problems.add(f"trigger.level.{key}", "use at_least or exact")
    elif raw_level is not None:
        problems.add("trigger.level", "give a level, {at_least: LEVEL} or {exact: LEVEL}")
    if level is not None and level not in LEVELS:
        problems.add("trigger.level", f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        level = None
    entities: list[tuple[str, tuple[str, ...]]] = []
    raw_entities = raw.get("entities")
    if isinstance(raw_entities, dict):
        for kind, values in raw_entities.items():
            entities.append((str(kind), _strings(values, f"trigger.entities.{kind}", problems)))
    elif raw_entities is not None:
        problems.add("trigger.entities", "give a mapping of entity kind to values, e.g. {ip: [10.0.0.5]}")
    on_changes = raw.get("on_playbook_changes", False)
    if not isinstance(on_changes, bool):
        problems.add("trigger.on_playbook_changes", "use true or false")
        on_changes = False
    cooldown = _number(raw, "cooldown_seconds", 0.0, "trigger.cooldown_seconds", problems, 0, 30 * 86400)
    return Trigger(events=events, level=level, level_match=match, tags=_strings(raw.get("tags"), "trigger.tags",
                   problems), rule_ids=_strings(raw.get("rule_ids"), "trigger.rule_ids", problems),
                   entities=tuple(entities), on_playbook_changes=on_changes, cooldown_seconds=cooldown)


def _condition(raw: Any, field: str, problems: _Problems) -> Comparison | ConditionGroup | None:
    if not isinstance(raw, dict):
        problems.add(field, "a condition is a mapping: {path: ..., equals: ...} or {all: [...]} / {any: [...]}")
        return None
    if set(raw) in ({"all"}, {"any"}):
        return _group(raw, field, problems)
    path = raw.get("path")
    operators = [key for key in raw if key != "path"]
    if not isinstance(path, str) or not path:
        problems.add(f"{field}.path", "name the payload field to test, e.g. incident.severity")
        return None
    if len(operators) != 1 or operators[0] not in OPERATORS:
        problems.add(field, f"give exactly one operator of {', '.join(OPERATORS)}")
        return None
    operator = operators[0]
    value = raw[operator]
    if operator == "in" and not isinstance(value, list):
        problems.add(f"{field}.in", "give a list of values")
    if operator == "exists" and not isinstance(value, bool):
        problems.add(f"{field}.exists", "use true or false")
    if operator in ("gte", "lte") and not isinstance(value, int | float | str):
        problems.add(f"{field}.{operator}", "give a number, a level or an ISO time")
    return Comparison(path=path, operator=operator, value=value)


def _group(raw: dict[str, Any], field: str, problems: _Problems) -> ConditionGroup | None:
    if len(raw) != 1 or next(iter(raw)) not in ("all", "any"):
        problems.add(field, "use exactly one of all: [...] or any: [...]")
        return None
    mode: Literal["all", "any"] = "all" if "all" in raw else "any"
    items = raw[mode]
    if not isinstance(items, list) or not items:
        problems.add(f"{field}.{mode}", "give a non-empty list of conditions")
        return None
    parsed = [_condition(item, f"{field}.{mode}[{i}]", problems) for i, item in enumerate(items)]
    return ConditionGroup(mode=mode, items=tuple(p for p in parsed if p is not None))


def _templates(value: Any, field: str, problems: _Problems) -> None:
    if isinstance(value, str):
        reason = template_error(value)
        if reason:
            problems.add(field, reason)
    elif isinstance(value, dict):
        for key, item in value.items():
            _templates(item, f"{field}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _templates(item, f"{field}[{index}]", problems)


def _secrets_only_in_secret_fields(value: Any, field: str, problems: _Problems) -> None:
    if isinstance(value, str) and ENV_PLACEHOLDER.search(value):
        problems.add(field, "${env:...} secrets are only read in secret fields (url, headers, user, password, env)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _secrets_only_in_secret_fields(item, f"{field}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _secrets_only_in_secret_fields(item, f"{field}[{index}]", problems)


def _number(raw: dict[str, Any], key: str, default: float, field: str, problems: _Problems,
            low: float, high: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.add(field, f"give a number from {low:g} to {high:g}")
        return default
    return float(value)


def _action(raw: Any, index: int, names: set[str], problems: _Problems) -> ActionSpec | None:
    field = f"actions[{index}]"
    if not isinstance(raw, dict):
        problems.add(field, "an action is a mapping with at least name and type")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.add(f"{field}.name", "give a name of letters, digits, '-', '_' or '.'")
        name = f"action{index}"
    elif name in names:
        problems.add(f"{field}.name", f"the name {name!r} is used twice")
    names.add(name)
    kind = raw.get("type")
    action_type = ACTION_TYPES.get(str(kind))
    if action_type is None:
        problems.add(f"{field}.type", f"unknown action type {kind!r}; use one of {', '.join(sorted(ACTION_TYPES))}")
        return None
    params = {k: v for k, v in raw.items() if k not in COMMON_ACTION_KEYS}
    allowed = set(action_type.required) | set(action_type.optional)
    for key in sorted(set(params) - allowed):
        problems.add(f"{field}.{key}", f"unknown field for a {kind} action; known: {', '.join(sorted(allowed))}")
    for key in action_type.required:
        if key not in params or params[key] in (None, "", []):
            problems.add(f"{field}.{key}", f"a {kind} action needs {key}")
    for key, reason in action_type.check(params):
        problems.add(f"{field}.{key}", reason)
    for key, value in params.items():
        if key not in action_type.secret:
            _templates(value, f"{field}.{key}", problems)
            _secrets_only_in_secret_fields(value, f"{field}.{key}", problems)
        elif "{{" in str(value) or "{%" in str(value):
            problems.add(f"{field}.{key}", "secret fields (url, headers, user, password, env) are not templates; "
                                           "put the value or ${env:NAME} there")
    approval = raw.get("approval", "none")
    if approval not in ("required", "none", None):
        problems.add(f"{field}.approval", "use required (or leave it out)")
    retry_raw = raw.get("retry", {})
    if not isinstance(retry_raw, dict):
        problems.add(f"{field}.retry", "give {max_attempts: N, base_delay: SECONDS}")
        retry_raw = {}
    for key in sorted(set(retry_raw) - {"max_attempts", "base_delay"}):
        problems.add(f"{field}.retry.{key}", "unknown key; known: max_attempts, base_delay")
    max_attempts = _number(retry_raw, "max_attempts", DEFAULT_MAX_ATTEMPTS, f"{field}.retry.max_attempts",
                           problems, 1, MAX_ATTEMPTS_LIMIT)
    base_delay = _number(retry_raw, "base_delay", DEFAULT_BASE_DELAY, f"{field}.retry.base_delay", problems, 0, 3600)
    timeout = _number(raw, "timeout", DEFAULT_TIMEOUT, f"{field}.timeout", problems, 0.1, 3600)
    on_failure = raw.get("on_failure", "stop")
    if on_failure not in ("stop", "continue"):
        problems.add(f"{field}.on_failure", "use stop (default) or continue")
    return ActionSpec(name=name, type=action_type.name, params=params, approval_required=approval == "required",
                      retry=RetryPolicy(max_attempts=int(max_attempts), base_delay=base_delay), timeout=timeout,
                      continue_on_failure=on_failure == "continue")


def parse_playbook(path: Path, text: str) -> tuple[Playbook | None, list[Refusal]]:
    """Parse one playbook's text; return the playbook, or None and every problem found in it."""
    problems = _Problems()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        return None, [Refusal(path, where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]
    if not isinstance(raw, dict):
        return None, [Refusal(path, "(file)", "a playbook is a YAML mapping with name, trigger and actions")]
    for key in sorted(set(raw) - TOP_KEYS):
        problems.add(key, f"unknown key; known: {', '.join(sorted(TOP_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.add("name", "give the playbook a name of letters, digits, '-', '_' or '.' (up to 100)")
        name = path.stem
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.add("enabled", "use true or false")
    trigger = _trigger(raw.get("trigger"), problems)
    conditions = None
    if raw.get("conditions") is not None:
        if isinstance(raw["conditions"], dict):
            conditions = _group(raw["conditions"], "conditions", problems)
        else:
            problems.add("conditions", "give {all: [...]} or {any: [...]}")
    actions_raw = raw.get("actions")
    actions: list[ActionSpec] = []
    if not isinstance(actions_raw, list) or not actions_raw:
        problems.add("actions", "give a non-empty list of actions")
    else:
        names: set[str] = set()
        for index, item in enumerate(actions_raw):
            action = _action(item, index, names, problems)
            if action is not None:
                actions.append(action)
    if problems.items:
        return None, [Refusal(path, field, reason) for field, reason in problems.items]
    playbook = Playbook(name=name, path=path, sha256=hashlib.sha256(text.encode()).hexdigest(), trigger=trigger,
                        conditions=conditions, actions=tuple(actions), description=str(raw.get("description", "")),
                        enabled=bool(enabled))
    return playbook, []


def load_folder(folder: Path | None) -> Library:
    """Load every ``*.yaml``/``*.yml`` file of ``folder`` (sorted, subfolders included); bad files and
    duplicate names are refused with the reason while the good ones load."""
    if folder is None:
        return Library()
    if not folder.exists():
        return Library(refused=(Refusal(folder, "(folder)", "the playbook folder does not exist"),), folder=folder)
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.suffix in SUFFIXES)
    playbooks: list[Playbook] = []
    refused: list[Refusal] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            refused.append(Refusal(path, "(file)", f"cannot read: {exc}"))
            continue
        playbook, problems = parse_playbook(path, text)
        refused.extend(problems)
        if playbook is None:
            continue
        if playbook.name in seen:
            refused.append(Refusal(path, "name", f"the name {playbook.name!r} is taken by {seen[playbook.name]}"))
            continue
        seen[playbook.name] = path
        playbooks.append(playbook)
    return Library(playbooks=tuple(playbooks), refused=tuple(refused), folder=folder)
