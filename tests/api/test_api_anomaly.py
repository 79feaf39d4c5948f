"""The anomaly worker through HTTP (status, rebuild by an admin, audited), and the command refusing to
rebuild under a running service."""

from __future__ import annotations

import subprocess
import sys

import httpx
from service_testing import Running
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from mamori.store.records import AuditEntry


def test_the_worker_status_is_read_by_analysts(service: Running) -> None:
    with httpx.Client(base_url=service.url) as client:
        status = client.get("/api/v1/anomaly", headers=service.headers("analyst"))
        assert status.status_code == 200
        assert status.json()["baselines_built"] is None  # nothing stored long enough yet
        assert client.get("/api/v1/anomaly", headers=service.headers("viewer")).status_code == 403
        assert client.get("/api/v1/anomaly").status_code == 401


def test_only_an_admin_rebuilds_and_too_short_a_history_is_a_409_that_is_audited(service: Running) -> None:
    with httpx.Client(base_url=service.url) as client:
        assert client.post("/api/v1/anomaly/rebuild", headers=service.headers("analyst")).status_code == 403
        answer = client.post("/api/v1/anomaly/rebuild", headers=service.headers("admin"))
    assert answer.status_code == 409 and "too little stored history" in answer.json()["detail"]
    engine = create_engine(f"sqlite:///{service.data_dir / 'mamori.db'}")
    try:
        with Session(engine) as session:
            entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "anomaly.rebuild")).one()
        assert entry.actor == "admin-user" and entry.detail["built"] is False
    finally:
        engine.dispose()


def test_the_rebuild_command_refuses_a_data_folder_a_running_service_uses(service: Running) -> None:
    run = subprocess.run([sys.executable, "-m", "mamori", "anomaly", "rebuild", "--data-dir", str(service.data_dir)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "is running on" in run.stderr and "/api/v1/anomaly/rebuild" in run.stderr
