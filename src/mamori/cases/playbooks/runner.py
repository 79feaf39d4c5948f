"""The playbook runner: starts runs for case events and advances them, one action at a time.

- It listens on the service's ``CaseBus``; ``submit`` only puts the event on a bounded queue, so a
  publisher is never blocked (a full queue drops the event and counts it, logged).
- A worker thread turns queued events into ``PlaybookRun`` rows (one per matching playbook) and
  advances every due run: an action marked ``approval: required`` pauses the run until ``approve`` or
  ``reject`` is called (console, REST); a failed attempt is retried after ``base_delay * 2**(n-1)``
  seconds (the run waits with ``resume_at`` in the database, so the worker is not blocked meanwhile).
- All state is in the database: after a restart the runner resumes runs that were running, waiting
  for a retry or approved while it was down. An action cut off by a crash is run again (at least once).
- No database transaction is held while an action runs (SQLite has one writer).
- Loop guard: see ``mamori.cases.playbooks.triggers`` (changes carry ``playbook:<name>`` as actor).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.events import CaseBus, CaseEvent, EventKind
from mamori.cases.playbooks.actions import ACTION_TYPES, ActionContext, ActionFailed
from mamori.cases.playbooks.history import actions_of
from mamori.cases.playbooks.loader import load_folder
from mamori.cases.playbooks.model import ActionSpec, Library, Playbook
from mamori.cases.playbooks.records import ActionRun, PlaybookRun
from mamori.cases.playbooks.templates import SecretMissing, render_value, resolve_secrets, scrub
from mamori.cases.playbooks.triggers import event_payload, should_start
from mamori.cases.records import IncidentAlert
from mamori.errors import MamoriError
from mamori.store.records import Alert, AuditEntry, utcnow

log = logging.getLogger("mamori.playbooks")

FINAL_ACTION_STATES = ("succeeded", "failed", "rejected", "skipped")
Outcome = tuple[bool, dict[str, Any], str, bool, float]  # ok, output, error, retryable, seconds
_RUNNERS: weakref.WeakSet[PlaybookRunner] = weakref.WeakSet()


def _id_of(item: dict[str, Any] | None) -> int | None:
    try:
        return int(item["id"]) if item and item.get("id") is not None else None
    except (TypeError, ValueError):
        return None


def render_input(spec: ActionSpec, context: dict[str, Any]) -> dict[str, Any]:
    """An action's parameters with every template rendered; secret fields are kept as written."""
    action_type = ACTION_TYPES[spec.type]
    return {key: value if key in action_type.secret else render_value(value, context)
            for key, value in spec.params.items()}


class PlaybookRunner:
    """Runs the playbooks of a library against case events (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], library: Library | None = None, *,
                 poll_seconds: float = 1.0, queue_size: int = 10_000) -> None:
        self.sessions = sessions
        self.library = library or Library()
        self.poll_seconds = poll_seconds
        self.dropped = 0
        self.bus: CaseBus | None = None
        self._queue: queue.Queue[CaseEvent] = queue.Queue(maxsize=queue_size)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()
        _RUNNERS.add(self)

    # ---- wiring ---------------------------------------------------------------------------------
    def subscribe(self, bus: CaseBus) -> None:
        """Listen for case events on ``bus`` (and publish the case changes playbooks make there)."""
        self.bus = bus
        bus.subscribe(self.submit)

    def submit(self, event: CaseEvent) -> None:
        """Queue an event for the worker; never blocks (a full queue drops the event, logged and counted)."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            log.warning("playbook queue full: %s dropped (%d so far)", event.kind, self.dropped)
            return
        self._wake.set()

    def reload(self, folder: Path | None) -> Library:
        """Load the playbook folder again (runs in progress continue if their playbook is unchanged)."""
        self.library = load_folder(folder)
        for refusal in self.library.refused:
            log.warning("playbook refused: %s", refusal)
        return self.library

    def wake(self) -> None:
        """Make the worker look for due runs now (after an approval)."""
        self._wake.set()

    def start(self) -> None:
        """Start the worker thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="playbooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker after the action it is running (state stays in the database)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.step()
            except Exception:  # never let the worker die; the run state is in the database
                log.exception("playbook worker step failed")
                worked = 0
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    # ---- work -----------------------------------------------------------------------------------
    def step(self, limit: int = 50) -> int:
        """Start runs for queued events, then advance due runs; return how many things were done."""
        with self._busy:
            done = 0
            while True:
                try:
                    event = self._queue.get_nowait()
                except queue.Empty:
                    break
                done += len(self.start_runs(event))
            for run_id in self._due_runs(limit):
                try:
                    self.advance(run_id)
                except OperationalError:  # the database is busy: try again on the next step
                    log.warning("playbook run %d: database busy, will retry", run_id, exc_info=True)
                except Exception as exc:  # a bug must not make one run block every other run forever
                    log.exception("playbook run %d failed inside the runner", run_id)
                    self._fail(run_id, f"internal error: {type(exc).__name__}: {exc}")
                done += 1
            return done

    def _fail(self, run_id: int, error: str) -> None:
        with self.sessions.begin() as session:
            run = session.get(PlaybookRun, run_id)
            if run is None:
                return
            for action in actions_of(session, run_id):
                if action.status not in FINAL_ACTION_STATES:
                    action.status = "skipped"
            self._finish(run, "failed", error)

    @property
    def queued(self) -> int:
        """Case events waiting for the worker (a gauge: it should stay near zero)."""
        return self._queue.qsize()

    def idle(self) -> bool:
        """True when no event is queued and no run is due (tests wait for this)."""
        return self._queue.empty() and not self._due_runs(1)

    def start_runs(self, event: CaseEvent) -> list[int]:
        """Create a run for every playbook this event starts; return the run ids."""
        if not any(playbook.enabled for playbook in self.library.playbooks):
            return []  # nothing could start: spare the payload and its database look-ups
        payload = event_payload(event)
        if payload["incident"] is not None and "rule_ids" not in payload["incident"]:
            payload["incident"]["rule_ids"] = self._incident_rule_ids(_id_of(payload["incident"]))
        started: list[int] = []
        for playbook in self.library.playbooks:
            if not should_start(playbook, payload):
                continue
            with self.sessions.begin() as session:
                if self._cooling_down(session, playbook, event):
                    continue
                run = PlaybookRun(playbook=playbook.name, playbook_file=str(playbook.path),
                                  playbook_sha256=playbook.sha256, event_kind=event.kind, event_actor=event.actor,
                                  payload=payload, incident_id=_id_of(event.incident), alert_id=_id_of(event.alert))
                session.add(run)
                session.flush()
                for position, action in enumerate(playbook.actions):
                    session.add(ActionRun(run_id=run.id, position=position, name=action.name, type=action.type))
                started.append(run.id)
            log.info("playbook %s started (run %d) by %s", playbook.name, run.id, event.kind)
        return started

    def _incident_rule_ids(self, incident_id: int | None) -> list[str]:
        """The Sigma rule ids of an incident's alerts (so ``trigger.rule_ids`` works on incident events)."""
        if incident_id is None:
            return []
        query = (select(Alert.rule_id).join(IncidentAlert, IncidentAlert.alert_id == Alert.id)
                 .where(IncidentAlert.incident_id == incident_id))
        with self.sessions() as session:
            return sorted(set(session.scalars(query)))

    @staticmethod
    def _cooling_down(session: Session, playbook: Playbook, event: CaseEvent) -> bool:
        """True when the playbook ran for the same incident (or alert) within its cooldown window."""
        seconds = playbook.trigger.cooldown_seconds
        incident_id, alert_id = _id_of(event.incident), _id_of(event.alert)
        if seconds <= 0 or (incident_id is None and alert_id is None):
            return False
        query = select(PlaybookRun.id).where(PlaybookRun.playbook == playbook.name,
                                             PlaybookRun.created_at >= utcnow() - timedelta(seconds=seconds))
        query = query.where(PlaybookRun.incident_id == incident_id) if incident_id is not None else \
            query.where(PlaybookRun.alert_id == alert_id)
        if session.scalars(query.limit(1)).first() is None:
            return False
        log.info("playbook %s cooling down for %s", playbook.name,
                 f"incident {incident_id}" if incident_id is not None else f"alert {alert_id}")
        return True

    def _due_runs(self, limit: int) -> list[int]:
        now = utcnow()
        with self.sessions() as session:
            query = select(PlaybookRun.id).where(or_(
                PlaybookRun.status == "running",
                (PlaybookRun.status == "waiting") & (PlaybookRun.resume_at.is_not(None))
                & (PlaybookRun.resume_at <= now)))
            return list(session.scalars(query.order_by(PlaybookRun.id).limit(limit)))

    def advance(self, run_id: int) -> str:
        """Run the next actions of a run until it finishes or waits (approval, retry); return its status."""
        while True:
            with self.sessions.begin() as session:
                run = session.get(PlaybookRun, run_id)
                if run is None or run.status not in ("running", "waiting"):
                    return run.status if run is not None else "missing"
                playbook = self._playbook_for(session, run)
                if playbook is None:
                    return run.status
                actions = actions_of(session, run_id)
                current = next((a for a in actions if a.status not in FINAL_ACTION_STATES), None)
                if current is None:
                    return self._complete(run, actions)
                spec = playbook.actions[current.position]
                context = self._context(run, playbook, actions)
                if current.approval == "pending":
                    run.status, run.resume_at = "waiting", None
                    return run.status
                if current.status == "pending" and current.attempts == 0 and current.approval != "approved":
                    try:
                        current.rendered_input = render_input(spec, context)
                    except Exception as exc:  # a template failing on this event fails the action, not the worker
                        current.started_at = utcnow()
                        error = f"cannot render the action's input: {type(exc).__name__}: {exc}"
                        if self._record(session, run, current, spec, 1, (False, {}, error, False, 0.0)):
                            continue
                        return run.status
                    if spec.approval_required:
                        current.approval, current.status = "pending", "waiting_approval"
                        run.status, run.resume_at, run.updated_at = "waiting", None, utcnow()
                        log.info("playbook %s run %d waits for approval of %s", run.playbook, run_id, spec.name)
                        return run.status
                run.status, run.resume_at = "running", None
                rendered = dict(current.rendered_input)
                payload = dict(run.payload)
                attempt = current.attempts + 1
                if current.started_at is None:
                    current.started_at = utcnow()
                action_id = current.id
            outcome = self._attempt(spec, rendered, payload, run_id, playbook.name)
            with self.sessions.begin() as session:
                current_row = session.get(ActionRun, action_id)
                run = session.get(PlaybookRun, run_id)
                assert current_row is not None and run is not None
                if not self._record(session, run, current_row, spec, attempt, outcome):
                    return run.status
                actions = actions_of(session, run_id)
                if all(a.status in FINAL_ACTION_STATES for a in actions):  # finish now: one commit fewer
                    return self._complete(run, actions)

    def _playbook_for(self, session: Session, run: PlaybookRun) -> Playbook | None:
        playbook = self.library.get(run.playbook)
        reason = ""
        if playbook is None:
            reason = f"the playbook {run.playbook!r} is no longer loaded"
        elif playbook.sha256 != run.playbook_sha256:
            reason = f"the playbook file changed since the run started ({run.playbook_sha256[:12]} -> " \
                     f"{playbook.sha256[:12]}); the run is not resumed with other actions"
        if reason:
            for action in actions_of(session, run.id):
                if action.status not in FINAL_ACTION_STATES:
                    action.status = "skipped"
            self._finish(run, "failed", reason)
            return None
        return playbook

    @staticmethod
    def _context(run: PlaybookRun, playbook: Playbook, actions: list[ActionRun]) -> dict[str, Any]:
        payload = dict(run.payload)
        return {"event": {k: payload.get(k) for k in ("kind", "actor", "changes")},
                "alert": payload.get("alert") or {}, "incident": payload.get("incident") or {},
                "playbook": {"name": playbook.name, "description": playbook.description},
                "run": {"id": run.id}, "steps": {a.name: a.output for a in actions if a.status == "succeeded"}}

    def _attempt(self, spec: ActionSpec, rendered: dict[str, Any], payload: dict[str, Any], run_id: int,
                 playbook: str) -> Outcome:
        """Run the action once: (ok, output, error, retryable, seconds); secrets scrubbed from both."""
        action_type = ACTION_TYPES[spec.type]
        secrets: list[str] = []
        started = time.monotonic()
        try:
            resolved = dict(rendered)
            for key in action_type.secret:
                if key in resolved:
                    resolved[key], used = resolve_secrets(resolved[key])
                    secrets.extend(used)
            context = ActionContext(sessions=self.sessions, playbook=playbook, run_id=run_id, payload=payload,
                                    timeout=spec.timeout)
            output = action_type.run(context, resolved)
            ok, error, retryable = True, "", False
        except SecretMissing as exc:
            output, ok, error, retryable = {}, False, str(exc), False
        except ActionFailed as exc:
            output, ok, error, retryable = exc.output, False, exc.message, exc.retryable
        except Exception as exc:  # an action's bug is that action's failure, logged with the run
            log.exception("playbook action %s crashed", spec.name)
            output, ok, error, retryable = {}, False, f"{type(exc).__name__}: {exc}", False
        seconds = time.monotonic() - started
        return ok, scrub(output, secrets), str(scrub(error, secrets)), retryable, seconds

    def _record(self, session: Session, run: PlaybookRun, action: ActionRun, spec: ActionSpec, attempt: int,
                outcome: Outcome) -> bool:
        """Write one attempt's result; return True when the run should go on to its next action now."""
        ok, output, error, retryable, seconds = outcome
        now = utcnow()
        retry = not ok and retryable and attempt < spec.retry.max_attempts
        delay = spec.retry.delay_after(attempt) if retry else None
        action.attempts = attempt
        action.attempt_log = [*action.attempt_log, {"attempt": attempt, "at": now.isoformat(),
                                                     "seconds": round(seconds, 4), "ok": ok, "error": error,
                                                     "retry_in": delay}]
        action.output, action.error = output, error
        run.updated_at = now
        if ok:
            action.status = "succeeded"
            self._close_action(action, now)
            self._publish_case_change(spec, output, run.playbook)
            return True
        if delay is not None:
            action.status = "retrying"
            run.status = "waiting"
            run.resume_at = now + timedelta(seconds=delay)
            return False
        action.status = "failed"
        self._close_action(action, now)
        log.warning("playbook %s run %d: action %s failed after %d attempt(s): %s", run.playbook, run.id,
                    spec.name, attempt, error)
        if spec.continue_on_failure:
            return True
        for other in actions_of(session, run.id):
            if other.status not in FINAL_ACTION_STATES and other.id != action.id:
                other.status = "skipped"
        self._finish(run, "failed", f"action {spec.name} failed: {error}")
        return False

    @staticmethod
    def _close_action(action: ActionRun, now: datetime) -> None:
        action.finished_at = now
        if action.started_at is not None:
            action.duration_ms = round((now - action.started_at).total_seconds() * 1000, 3)

    def _complete(self, run: PlaybookRun, actions: list[ActionRun]) -> str:
        """Close a run whose actions are all done: failed if one failed (with ``on_failure: continue``)."""
        failed = [a.name for a in actions if a.status == "failed"]
        self._finish(run, "failed" if failed else "succeeded",
                     f"failed (on_failure: continue): {', '.join(failed)}" if failed else "")
        return run.status

    @staticmethod
    def _finish(run: PlaybookRun, status: str, error: str = "") -> None:
        run.status, run.error, run.resume_at = status, error, None
        run.finished_at = run.updated_at = utcnow()

    def _publish_case_change(self, spec: ActionSpec, output: dict[str, Any], playbook: str) -> None:
        """Tell the bus about an incident a playbook changed or opened (actor ``playbook:<name>``)."""
        if self.bus is None or spec.type not in ("set_severity", "set_status", "open_incident"):
            return
        incident = output.get("incident") or None
        if not incident or output.get("changed") is False:
            return
        kind: EventKind = "incident.created" if spec.type == "open_incident" else "incident.updated"
        changes: dict[str, Any] = dict(output.get("changes") or {})
        self.bus.publish(CaseEvent(kind=kind, incident=incident, actor=f"playbook:{playbook}", changes=changes))


def preview(playbook: Playbook, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """What each action of ``playbook`` would receive for this event payload, without running anything
    (secrets stay placeholders; ``steps`` of earlier actions are empty): for authors checking templates."""
    context = {"event": {k: payload.get(k) for k in ("kind", "actor", "changes")},
               "alert": payload.get("alert") or {}, "incident": payload.get("incident") or {},
               "playbook": {"name": playbook.name, "description": playbook.description}, "run": {"id": 0},
               "steps": {}}
    out: list[dict[str, Any]] = []
    for spec in playbook.actions:
        try:
            out.append({"name": spec.name, "type": spec.type, "approval_required": spec.approval_required,
                        "input": render_input(spec, context)})
        except Exception as exc:  # shown to the author, like the runner would log it
            out.append({"name": spec.name, "type": spec.type, "error": f"{type(exc).__name__}: {exc}"})
    return out


# ---- decisions (console and REST) -----------------------------------------------------------------
def _pending(session: Session, action_run_id: int) -> tuple[ActionRun, PlaybookRun]:
    action = session.get(ActionRun, action_run_id)
    if action is None:
        raise MamoriError(f"no playbook action {action_run_id}", where=f"action {action_run_id}")
    if action.approval != "pending":
        raise MamoriError(f"action {action_run_id} is not waiting for approval (it is {action.approval})",
                          where=f"action {action_run_id}", hint="only pending approvals can be decided")
    run = session.get(PlaybookRun, action.run_id)
    assert run is not None
    return action, run


def approve(session: Session, action_run_id: int, actor: str) -> ActionRun:
    """Approve a waiting action (in the caller's transaction, audited); the runner resumes the run."""
    action, run = _pending(session, action_run_id)
    now = utcnow()
    action.approval, action.status, action.decided_by, action.decided_at = "approved", "pending", actor, now
    run.status, run.resume_at, run.updated_at = "running", None, now
    session.add(AuditEntry(actor=actor, action="playbook.approve", target=f"playbook action {action.id}",
                           detail={"run": run.id, "playbook": run.playbook, "action": action.name}))
    session.flush()
    for runner in list(_RUNNERS):
        runner.wake()
    return action


def reject(session: Session, action_run_id: int, actor: str, reason: str = "") -> ActionRun:
    """Reject a waiting action (audited): it is not done, the rest of the run is skipped, the run ends
    ``rejected``."""
    action, run = _pending(session, action_run_id)
    now = utcnow()
    action.approval, action.status, action.decided_by, action.decided_at = "rejected", "rejected", actor, now
    action.decision_reason = reason
    action.finished_at = now
    for other in actions_of(session, run.id):
        if other.status not in FINAL_ACTION_STATES and other.id != action.id:
            other.status = "skipped"
    run.status, run.error, run.resume_at = "rejected", f"{action.name} rejected by {actor}: {reason}".strip(), None
    run.finished_at = run.updated_at = now
    session.add(AuditEntry(actor=actor, action="playbook.reject", target=f"playbook action {action.id}",
                           detail={"run": run.id, "playbook": run.playbook, "action": action.name, "reason": reason}))
    session.flush()
    return action
