"""Alerts and incidents are given only to people who exist: an unknown, disabled or ingest-only user is
refused with a 422 naming the field and the name, an enabled user (added with `mamori users add`) is
taken, and null or empty gives the work back. Through HTTP on a real ``mamori serve`` child."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
from service_testing import Running, process_event, wait_for

from mamori.service.launch import running_service


def _mamori(service: Running, *args: str) -> None:
    """Run a ``mamori`` command on the child's data folder, as an administrator would."""
    assert running_service(service.data_dir) is not None
    subprocess.run([sys.executable, "-m", "mamori", *args, "--data-dir", str(service.data_dir)], check=True,
                   capture_output=True, timeout=120)


def _alert(client: httpx.Client, host: str, seq: int, user: str = "assign-test") -> dict[str, Any]:
    """Ingest a whoami run on ``host`` by ``user`` and return the alert it raises."""
    client.post("/api/v1/ingest", json=[process_event(seq, "whoami /all", host, user)])
    alerts: list[dict[str, Any]] = wait_for(
        lambda: client.get("/api/v1/alerts", params={"host": host}).json()["alerts"])
    return alerts[0]


def test_an_alert_is_assigned_only_to_an_enabled_user_and_can_be_given_back(service: Running) -> None:
    _mamori(service, "users", "add", "hanako", "--role", "analyst", "--no-token")
    _mamori(service, "users", "add", "jiro", "--role", "analyst", "--no-token")
    _mamori(service, "users", "disable", "jiro")
    _mamori(service, "users", "add", "shipper", "--role", "ingest", "--no-token")
    with service.client("analyst") as client:
        alert = _alert(client, "WS-ASSIGN", 300)
        url = f"/api/v1/alerts/{alert['id']}/assign"

        unknown = client.post(url, json={"assignee": "hanakoo"})
        assert unknown.status_code == 422
        assert unknown.json()["detail"].startswith("assignee: no user 'hanakoo'")
        disabled = client.post(url, json={"assignee": "jiro"})
        assert (disabled.status_code, disabled.json()["detail"]) == (422, "assignee: user 'jiro' is disabled")
        shipper = client.post(url, json={"assignee": "shipper"})
        assert shipper.status_code == 422 and "'shipper' is an ingest account" in shipper.json()["detail"]
        assert client.get(f"/api/v1/alerts/{alert['id']}").json()["assignee"] is None  # nothing changed

        assert client.post(url, json={"assignee": " hanako "}).json()["assignee"] == "hanako"
        assert client.get("/api/v1/alerts", params={"assignee": "hanako"}).json()["total"] == 1
        assert client.post(url, json={"assignee": None}).json()["assignee"] is None
        client.post(url, json={"assignee": "hanako"})
        assert client.post(url, json={"assignee": ""}).json()["assignee"] is None
        assert client.get(f"/api/v1/alerts/{alert['id']}").json()["assignee"] is None


def test_an_incident_owner_must_be_an_enabled_user_and_a_refused_patch_changes_nothing(service: Running) -> None:
    _mamori(service, "users", "add", "sato", "--role", "analyst", "--no-token")
    with service.client("analyst") as client:
        _alert(client, "WS-OWNER", 310, user="owner-test")
        incident = wait_for(lambda: [i for i in client.get("/api/v1/incidents").json()["incidents"]
                                     if "ws-owner" in i["entities"]["host"]])[0]  # the grouping worker opens it
        url = f"/api/v1/incidents/{incident['id']}"

        refused = client.patch(url, json={"owner": "satoo", "status": "investigating"})
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("owner: no user 'satoo'")
        after = client.get(url).json()
        assert (after["owner"], after["status"]) == (None, "new")  # all or none: the status did not move

        taken = client.patch(url, json={"owner": "sato", "status": "investigating"})
        assert (taken.status_code, taken.json()["owner"], taken.json()["status"]) == (200, "sato", "investigating")
        assert client.patch(url, json={"owner": ""}).json()["owner"] is None
