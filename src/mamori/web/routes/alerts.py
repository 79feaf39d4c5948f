"""The alert list (filters, paging, bulk acknowledge / close / assign / open an incident) and one alert."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from mamori.api.auth import audit
from mamori.api.deps import service_of
from mamori.api.routes_alerts import alert_dict, benign_verdict
from mamori.cases import workflow
from mamori.cases.records import IncidentAlert
from mamori.detect.attack import LEVELS
from mamori.errors import MamoriError
from mamori.service.anomaly_worker import is_anomaly_alert
from mamori.store.records import ALERT_STATUSES, Alert, utcnow
from mamori.web.casebus import publish
from mamori.web.context import ConsoleUser, Reader, checked_form, page_error, render

router = APIRouter()
PAGE = 50
FILTERS = ("status", "level", "host", "user", "rule_id", "q")
BULK_ACTIONS = ("acknowledge", "close", "assign_me", "open_incident")


def _query(filters: dict[str, str]) -> Any:
    query = select(Alert)
    for name in ("status", "level", "host", "user", "rule_id"):
        if filters.get(name):
            query = query.where(getattr(Alert, name) == filters[name])
    if filters.get("q"):
        query = query.where(Alert.rule_title.icontains(filters["q"], autoescape=True))
    return query


@router.get("/alerts", response_class=HTMLResponse, summary="Alert list")
def alerts_page(request: Request, page: int = 1, user: ConsoleUser = Reader) -> Response:
    """Alerts newest first, filtered by status, level, host, user, rule and title text; an htmx request gets
    only the table."""
    filters = {name: request.query_params.get(name, "").strip()[:200] for name in FILTERS}
    page = max(page, 1)
    with service_of(request).sessions() as session:
        query = _query(filters)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(Alert.id.desc()).limit(PAGE).offset((page - 1) * PAGE)).all()
        links = session.execute(select(IncidentAlert.alert_id, IncidentAlert.incident_id)
                                .where(IncidentAlert.alert_id.in_([a.id for a in rows])))
        incident_of = {int(alert_id): int(incident_id) for alert_id, incident_id in links}
    kept = {k: v for k, v in filters.items() if v}
    template = "alerts_table.html" if request.headers.get("hx-target") == "alert-table" else "alerts.html"
    return render(request, template, user, alerts=rows, total=total, page=page, pages=max((total - 1) // PAGE + 1, 1),
                  filters=filters, query=urlencode(kept), levels=LEVELS, statuses=ALERT_STATUSES,
                  actions=BULK_ACTIONS, message=request.query_params.get("done", ""), incident_of=incident_of)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse, summary="One alert")
def alert_page(request: Request, alert_id: int, user: ConsoleUser = Reader) -> Response:
    """The alert's rule, entities, explanation and matched events (linked to event search)."""
    with service_of(request).sessions() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise page_error(404, "error.no_alert", id=alert_id)
        incident_id = _incident_of(session, alert_id)
    return render(request, "alert.html", user, alert=alert, incident_id=incident_id, actions=BULK_ACTIONS,
                  message=request.query_params.get("done", ""), anomaly=is_anomaly_alert(alert.rule_id))


@router.post("/alerts/{alert_id}/benign", summary="Mark an anomaly alert benign")
async def benign(request: Request, alert_id: int, user: ConsoleUser = Reader) -> Response:
    """The analyst's "benign" verdict on an anomaly alert: closed, its detector taught; audited."""
    await checked_form(request, user, "analyst")
    try:
        shown = benign_verdict(service_of(request), alert_id, user.name, via="console")
    except HTTPException as exc:
        raise page_error(exc.status_code, "error.not_anomaly" if exc.status_code == 409 else "error.no_alert",
                         id=alert_id) from exc
    publish(request, "alert.updated", user.name, alert=shown, changes={"status": "closed"})
    done = "benign" if shown["learned"] else "benign_unlearned"
    return RedirectResponse(f"/console/alerts/{alert_id}?done={done}", 303)


def _incident_of(session: Any, alert_id: int) -> int | None:
    found: int | None = session.scalar(select(IncidentAlert.incident_id).where(IncidentAlert.alert_id == alert_id))
    return found


@router.post("/alerts/bulk", summary="Act on the selected alerts")
async def bulk(request: Request, user: ConsoleUser = Reader) -> Response:
    """Acknowledge, close, take (assign to me) or group into a new incident the chosen alerts; audited."""
    form = await checked_form(request, user, "analyst")
    action = str(form.get("action", ""))
    raw_ids = form.get("ids", [])
    ids = sorted({int(i) for i in ([raw_ids] if isinstance(raw_ids, str) else raw_ids) if str(i).isdigit()})
    if action not in BULK_ACTIONS or not ids:
        return RedirectResponse(f"/console/alerts?{form.get('back_query', '')}", 303)
    service = service_of(request)
    if action == "open_incident":
        try:
            with service.sessions.begin() as session:
                incident = workflow.open_incident(session, ids, user.name)
                audit(session, user.name, "incident.open", f"incident {incident.id}", alerts=ids, via="console")
                incident_id, shown = incident.id, workflow.incident_dict(incident)
        except MamoriError as exc:
            raise HTTPException(400, detail=exc.message) from exc
        publish(request, "incident.created", user.name, incident=shown)
        return RedirectResponse(f"/console/incidents/{incident_id}", 303)
    values: dict[str, Any] = {"acknowledge": {"status": "acknowledged"}, "close": {"status": "closed"},
                              "assign_me": {"assignee": user.name}}[action]
    changed: list[dict[str, Any]] = []
    with service.sessions.begin() as session:
        for alert in session.scalars(select(Alert).where(Alert.id.in_(ids))):
            before = {k: getattr(alert, k) for k in values}
            for key, value in values.items():
                setattr(alert, key, value)
            alert.updated_at = utcnow()
            audit(session, user.name, f"alert.{action}", f"alert {alert.id}", before=before, after=values,
                  via="console")
            session.flush()
            changed.append(alert_dict(alert))
    for shown_alert in changed:
        publish(request, "alert.updated", user.name, alert=shown_alert, changes=values)
    page = str(form.get("back", ""))
    if page.startswith("/console/alerts/") and page[len("/console/alerts/"):].isdigit():
        return RedirectResponse(f"{page}?done={action}", 303)
    back = str(form.get("back_query", ""))
    return RedirectResponse(f"/console/alerts?{back}{'&' if back else ''}done={action}", 303)
