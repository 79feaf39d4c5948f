"""Run the demo: start ``mamori serve`` on a fresh data folder, feed it the scenario over the HTTP ingest
API, wait until the intrusion is an incident in the console, and say where to look.

The service is a real child process (``mamori.service.launch.ServiceProcess``) with the rules the user
has (the local rule store, or ``--rules``); nothing in the demo detects or groups on its own. The events
go in as Winlogbeat NDJSON with an ``Idempotency-Key`` per request, so their event ids are known in
advance: ``event_uid("winjson", "http:winlogbeat:<key>", index)``. That is how tests tell the
intrusion's alerts from the background's.
"""

from __future__ import annotations

import functools
import html
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from mamori.demo.scenario import DEFAULT_SEED, DemoEvent, Scenario, generate, write_logs
from mamori.errors import MamoriError
from mamori.events.frame import event_uid
from mamori.service.launch import ServiceProcess

INGEST_SOURCE = "winlogbeat"
BATCH_EVENTS = 1000
MARKER = "mamori-demo.json"
DEMO_USER = "demo-admin"
QUIET_SECONDS = 2.5  # the grouping worker runs every second: this much quiet means it has caught up
SHARED_RULES = Path("..") / "shared" / "data" / "sigmahq" / "rules"

Say = Callable[[str], None]


@functools.cache
def _catalogue() -> dict[str, dict[str, str]]:
    text = (resources.files("mamori.demo") / "data" / "messages.yaml").read_text("utf-8")
    loaded: dict[str, dict[str, str]] = yaml.safe_load(text)
    return loaded


def message(lang: str, key: str, **values: Any) -> str:
    """One line the demo prints, in ``lang`` (``ja`` or ``en``; English when the key is missing)."""
    catalogue = _catalogue()
    text = catalogue.get(lang, {}).get(key) or catalogue["en"][key]
    return text.format(**values)


def pick_language(option: str | None, env: Mapping[str, str] | None = None) -> str:
    """The language to speak: the option when given, else Japanese when ``LC_ALL``/``LANG`` say so."""
    if option in ("ja", "en"):
        return option
    env = os.environ if env is None else env
    wanted = env.get("LC_ALL") or env.get("LC_MESSAGES") or env.get("LANG") or ""
    return "ja" if wanted.lower().startswith("ja") else "en"


@dataclass(frozen=True)
class DemoOptions:
    """What the user asked for: where the data goes, which rules, the seed, the language, the limits."""

    data_dir: Path = Path("mamori-demo")
    rules: tuple[Path, ...] = ()
    seed: int = DEFAULT_SEED
    lang: str = "en"
    timeout: float = 240.0
    save_logs: Path | None = None
    start: datetime | None = None  # default: three hours before now, so the story ends now
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FedEvents:
    """The event ids the service gives the demo's events, by kind: intrusion or background."""

    attack: frozenset[str]
    background: frozenset[str]
    stage_of: Mapping[str, str]
    host_of: Mapping[str, str]


@dataclass(frozen=True)
class DemoResult:
    """Where the demo ended: the URLs, the login, the incidents, the figures."""

    api_url: str
    console_url: str | None
    user: str
    password: str
    token: str
    incidents: tuple[dict[str, Any], ...]
    alerts_total: int
    loose_alerts: int
    seconds_to_visible: float
    fed: FedEvents
    scenario: Scenario
    service_log: Path


@dataclass
class RunningDemo:
    """A demo whose service is still running; ``stop`` ends it."""

    service: ServiceProcess
    result: DemoResult

    def stop(self) -> int | None:
        """Stop the service child (SIGTERM, then SIGKILL if it hangs)."""
        return self.service.stop()


def resolve_rules(given: Sequence[Path], lang: str, cwd: Path | None = None) -> list[Path]:
    """The rule folders to run: those given, else the local rule store; a MamoriError that says how to get
    rules (naming SigmaHQ's rules when they lie at ``../shared/data``) when there are none."""
    if given:
        missing = [p for p in given if not p.exists()]
        if missing:
            raise MamoriError(f"{missing[0]}: no such rule folder or file", where="--rules",
                              hint=message(lang, "no_rules_hint"))
        return list(given)
    from mamori.detect.sigma.rulestore import store_dir

    store = store_dir()
    if store.is_dir() and any(store.rglob("*.yml")):
        return [store]
    shared = (cwd or Path.cwd()) / SHARED_RULES
    found = shared.is_dir()
    hint = message(lang, "no_rules_hint_found", path=SHARED_RULES) if found else message(lang, "no_rules_hint")
    raise MamoriError(message(lang, "no_rules"), where="--rules", hint=hint)


def prepare_data_dir(path: Path, lang: str) -> None:
    """Make ``path`` an empty data folder: create it, or clear it when an earlier demo made it; refuse any
    other non-empty folder (the demo never deletes what it did not create)."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise MamoriError(message(lang, "not_demo_folder", path=path), where="--data-dir",
                              hint=message(lang, "not_demo_folder_hint"))
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_bytes(orjson.dumps({"made_by": "mamori demo", "at": datetime.now(UTC).isoformat()}))


def create_console_user(data_dir: Path) -> tuple[str, str, str]:
    """Create the demo's admin user in the data folder's database (before the service starts) with a console
    password and an API token; return (user, password, token)."""
    from mamori.api.auth import create_user, issue_token
    from mamori.config import load_settings
    from mamori.store.db import make_engine, migrate, session_factory

    try:
        from mamori.web import accounts
    except ImportError:  # a build without the console: the token still works
        accounts = None  # type: ignore[assignment]
    password = secrets.token_urlsafe(12)
    # the tables this needs (users, tokens, console accounts); the service migrates the rest when it starts,
    # and importing the whole service here would double the demo's start-up time
    engine = make_engine(load_settings(None, env={}, data_dir=data_dir).db_url)
    migrate(engine)
    sessions = session_factory(engine)
    try:
        with sessions.begin() as session:
            create_user(session, DEMO_USER, "admin")
            if accounts is not None:
                accounts.set_password(session, DEMO_USER, password)
            token = issue_token(session, DEMO_USER, "mamori demo")
    finally:
        engine.dispose()
    return DEMO_USER, password, token


def batch_key(scenario: Scenario, index: int) -> str:
    """The Idempotency-Key of the ``index``-th ingest request: names the seed, the start and the batch."""
    return f"mamori-demo-{scenario.seed}-{scenario.start:%Y%m%dT%H%M%S}-{index}"


def batches(scenario: Scenario, size: int = BATCH_EVENTS) -> list[tuple[str, Sequence[DemoEvent]]]:
    """The scenario cut into ingest requests, in time order, each with its Idempotency-Key."""
    events = scenario.events
    return [(batch_key(scenario, n), events[i:i + size]) for n, i in enumerate(range(0, len(events), size))]


def expected_uids(scenario: Scenario, size: int = BATCH_EVENTS) -> FedEvents:
    """The event ids the service will give the scenario's events once fed by ``feed``."""
    attack: set[str] = set()
    background: set[str] = set()
    stage_of: dict[str, str] = {}
    host_of: dict[str, str] = {}
    for key, chunk in batches(scenario, size):
        origin = f"http:{INGEST_SOURCE}:{key}"
        for index, event in enumerate(chunk):
            uid = event_uid("winjson", origin, index)
            (attack if event.is_attack else background).add(uid)
            stage_of[uid] = event.stage
            host_of[uid] = event.host
    return FedEvents(frozenset(attack), frozenset(background), stage_of, host_of)


def feed(client: httpx.Client, scenario: Scenario, size: int = BATCH_EVENTS, timeout: float = 120.0) -> int:
    """Send the scenario to ``POST /api/v1/ingest`` as NDJSON, retrying when the service asks to (429/503);
    return the number of requests."""
    sent = 0
    for key, chunk in batches(scenario, size):
        body = b"".join(orjson.dumps(e.document) + b"\n" for e in chunk)
        deadline = time.monotonic() + timeout
        while True:
            response = client.post("/api/v1/ingest", params={"source": INGEST_SOURCE}, content=body,
                                   headers={"Content-Type": "application/x-ndjson", "Idempotency-Key": key})
            if response.status_code == 202:
                break
            if response.status_code in (409, 429, 503) and time.monotonic() < deadline:
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            raise MamoriError(f"the service refused the events: HTTP {response.status_code} {response.text[:300]}",
                              where=f"POST {client.base_url}/api/v1/ingest")
        sent += 1
    return sent


def _open_incidents(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/incidents", params={"limit": 1000})
    if response.status_code == 404:
        return []
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()["incidents"]
    return [i for i in rows if not i.get("merged_into")]


def _settled(client: httpx.Client) -> tuple[bool, int, list[dict[str, Any]]]:
    health = client.get("/api/v1/health").json()
    drained = health["spool"]["pending_bytes"] == 0 and health["pipeline"]["lag_seconds"] < 1
    alerts = int(client.get("/api/v1/alerts", params={"limit": 1}).json()["total"])
    return drained, alerts, _open_incidents(client)


def wait_for_incidents(client: httpx.Client, timeout: float, say: Say, lang: str,
                       log: Path) -> tuple[int, list[dict[str, Any]]]:
    """Poll until the pipeline has taken every event and, with at least one incident, the alerts and
    incidents have not changed for ``QUIET_SECONDS`` (longer than the grouping worker's round); return
    (alert count, incidents)."""
    deadline = time.monotonic() + timeout
    last: tuple[Any, ...] | None = None
    since = time.monotonic()
    shown: tuple[int, int] | None = None
    while time.monotonic() < deadline:
        drained, alerts, incidents = _settled(client)
        state = (alerts, tuple(sorted((i["id"], i["alert_count"]) for i in incidents)))
        if (alerts, len(incidents)) != shown:
            shown = (alerts, len(incidents))
            say(message(lang, "progress", alerts=alerts, incidents=len(incidents)))
        if not (drained and incidents and state == last):
            since = time.monotonic()
        elif time.monotonic() - since >= QUIET_SECONDS:
            return alerts, incidents
        last = state
        time.sleep(0.4)
    raise MamoriError(message(lang, "no_incident", seconds=timeout), where=str(log),
                      hint=message(lang, "no_incident_hint", log=log))


def console_shows(base_url: str, user: str, password: str, incident_id: int, title: str = "") -> bool | None:
    """Log in to the console as a browser would and open the incident page: True when it shows (with the
    incident's title), False when it does not, None when this build has no console."""
    with httpx.Client(base_url=base_url, timeout=30.0, follow_redirects=False) as browser:
        login = browser.post("/console/login", data={"username": user, "password": password,
                                                     "next": f"/console/incidents/{incident_id}"})
        if login.status_code == 404:
            return None
        if login.status_code != 303:
            return False
        page = browser.get(f"/console/incidents/{incident_id}")
        return page.status_code == 200 and html.escape(title, quote=False) in page.text


def _rank(incident: Mapping[str, Any]) -> tuple[int, int]:
    order = ("informational", "low", "medium", "high", "critical")
    severity = order.index(incident["severity"]) if incident.get("severity") in order else -1
    return severity, int(incident.get("alert_count") or 0)


def _short_time(text: str | None) -> str:
    return (text or "?").replace("T", " ")[:19]


def describe(result: DemoResult, lang: str, say: Say) -> None:
    """Print where to look: the console URL of the main incident, the login, what the incident holds."""
    say(message(lang, "where"))
    incidents = sorted(result.incidents, key=_rank, reverse=True)
    top = incidents[0]
    if result.console_url:
        say(message(lang, "console", url=result.console_url))
        say(message(lang, "login", user=result.user, password=result.password))
    else:
        say(message(lang, "console_missing", url=f"{result.api_url}/api/v1/incidents/{top['id']}"))
    say(message(lang, "api_token", token=result.token))
    say(message(lang, "service_log", path=result.service_log.resolve()))
    for incident in incidents:
        entities = incident.get("entities") or {}
        say(message(lang, "incident", id=incident["id"], severity=incident["severity"], title=incident["title"]))
        say(message(lang, "incident_alerts", alerts=incident["alert_count"], first=_short_time(incident["first_seen"]),
                    last=_short_time(incident["last_seen"])))
        say(message(lang, "incident_hosts", hosts=", ".join(entities.get("host", [])) or "-"))
        say(message(lang, "incident_users", users=", ".join(entities.get("user", [])) or "-"))
        tactics = [t.removeprefix("attack.") for t in incident.get("tactics") or []]
        say(message(lang, "incident_tactics", tactics=", ".join(tactics) or "-"))
    if result.loose_alerts:
        say(message(lang, "loose_alerts", count=result.loose_alerts))


def _loose_alerts(incidents: Sequence[Mapping[str, Any]], total: int) -> int:
    linked = sum(int(i.get("alert_count") or 0) for i in incidents)
    return max(0, total - linked)


def start_demo(options: DemoOptions, say: Say) -> RunningDemo:
    """Run the demo up to "incident visible in the console" and return it with its service still running."""
    began = time.monotonic()
    lang = options.lang
    rules = resolve_rules(options.rules, lang)
    say(message(lang, "rules", rules=", ".join(str(r) for r in rules)))
    prepare_data_dir(options.data_dir, lang)
    start = options.start or (datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
    scenario = generate(options.seed, start)
    counts = scenario.stage_counts()
    say(message(lang, "generating", events=len(scenario.events), hosts=len(scenario.company.hosts),
                attack=len(scenario.events) - counts.get("background", 0),
                start=_short_time(scenario.start.isoformat()), end=_short_time(scenario.end.isoformat())))
    if options.save_logs is not None:
        say(message(lang, "logs_saved", path=write_logs(scenario, options.save_logs)))
    user, password, token = create_console_user(options.data_dir)
    say(message(lang, "starting", data=options.data_dir.resolve()))
    service = ServiceProcess(options.data_dir, rules=rules, extra={"MAMORI_BATCH_SECONDS": "0.25",
                                                                   **options.extra_env})
    try:
        service.start(timeout=options.timeout)
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"},
                          timeout=60.0) as client:
            loaded = client.get("/api/v1/health").json().get("rules", "?")
            say(message(lang, "started", url=service.url, seconds=time.monotonic() - began, rules=loaded))
            say(message(lang, "feeding"))
            fed_at = time.monotonic()
            requests = feed(client, scenario)
            say(message(lang, "fed", events=len(scenario.events), batches=requests,
                        seconds=time.monotonic() - fed_at))
            say(message(lang, "waiting"))
            remaining = max(10.0, options.timeout - (time.monotonic() - began))
            alerts, incidents = wait_for_incidents(client, remaining, say, lang, service.log)
            top = max(incidents, key=_rank)
            shows = console_shows(service.url, user, password, int(top["id"]), str(top["title"]))
            if shows is False:
                raise MamoriError(f"the console does not show incident {top['id']}", where=str(service.log))
            seconds = time.monotonic() - began
            result = DemoResult(
                api_url=service.url,
                console_url=f"{service.url}/console/incidents/{top['id']}" if shows else None,
                user=user, password=password, token=token, incidents=tuple(incidents), alerts_total=alerts,
                loose_alerts=_loose_alerts(incidents, alerts), seconds_to_visible=seconds,
                fed=expected_uids(scenario), scenario=scenario, service_log=service.log)
    except BaseException:
        service.stop()
        raise
    say(message(lang, "visible", seconds=result.seconds_to_visible))
    return RunningDemo(service, result)
