"""`mamori intel share prepare --incident-id N`: sharing a stored incident straight from the records database
of a `mamori serve` data folder (redacted, TLP checked against the configured partners)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from mamori.cases.workflow import open_incident
from mamori.config import load_settings
from mamori.intel.cli import intel
from mamori.intel.share import load_share
from mamori.intel.store import IntelStore
from mamori.service.runtime import open_records
from mamori.store.records import Alert

SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
COMMAND_LINE = "whoami /all & net user tanaka & echo taro.yamada@example.co.jp 090-1234-5678"


def _alert(**values: object) -> Alert:
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    base: dict[str, object] = {
        "rule_id": "0c1a0000-0000-4000-8000-000000000001", "rule_title": "Whoami Execution", "level": "high",
        "tags": ["attack.discovery", "attack.t1033"], "first_seen": start, "last_seen": start + timedelta(minutes=5),
        "host": "WS7", "user": "CORP\\tanaka", "ip": "203.0.113.5", "process": "C:\\Users\\tanaka\\whoami.exe",
        "file_hash": f"SHA256={SHA256}", "explanation": f"selection matched: CommandLine={COMMAND_LINE!r}",
        "dedup_key": "whoami|WS7", "count": 3,
    }
    return Alert(**{**base, **values})


def records_with_incident(data: Path, *alerts: Alert) -> int:
    """A data folder whose records database holds one incident made of ``alerts``; its id."""
    engine, sessions = open_records(load_settings(None, env={}, data_dir=data))
    with sessions.begin() as session:
        session.add_all(alerts or [_alert()])
        session.flush()
        ids = [a.id for a in session.query(Alert).all()]
        incident_id = open_incident(session, ids, "analyst-user", "Discovery on WS7").id
    engine.dispose()
    return incident_id


def share(data: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(intel, ["share", "prepare", *args, "--data-dir", str(data)],
                                env={"MAMORI_TAXII_PARTNERS": "", **(env or {})}, catch_exceptions=False)
    return result.exit_code, result.output


def shared_objects(data: Path, output: str) -> list[dict[str, object]]:
    share_id = re.search(r"share ([0-9a-f-]{36})", output).group(1)  # type: ignore[union-attr]
    objects: list[dict[str, object]] = load_share(IntelStore.open(data / "intel.db"), share_id).bundle["objects"]
    return objects


def test_prepare_from_a_stored_incident_builds_a_report_with_attack_patterns_and_observables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    incident_id = records_with_incident(data)
    code, out = share(data, "--incident-id", str(incident_id), "--tlp", "green")
    assert code == 0, out
    objects = shared_objects(data, out)
    report = next(o for o in objects if o["type"] == "report")
    assert report["name"] == "Discovery on WS7"
    description = str(report["description"])
    assert f"Incident {incident_id}: status new, severity high" in description
    assert "Hosts: WS7" in description and "discovery" in description
    assert {o.get("name") for o in objects if o["type"] == "attack-pattern"} == {"T1033"}
    assert {o.get("value") for o in objects if o["type"] == "ipv4-addr"} == {"203.0.113.5"}
    files = [o for o in objects if o["type"] == "file"]
    assert any(f.get("name") == "whoami.exe" for f in files)
    assert any(f.get("hashes") == {"SHA-256": SHA256} for f in files)


def test_prepare_from_a_stored_incident_redacts_personal_data_and_lists_each_redaction(tmp_path: Path) -> None:
    data = tmp_path / "data"
    incident_id = records_with_incident(data)
    code, out = share(data, "--incident-id", str(incident_id))
    assert code == 0, out
    assert re.search(r"redacted email in report--\S+\.description", out)
    assert re.search(r"redacted phone in report--\S+\.description", out)
    assert re.search(r"redacted internal_user in report--\S+\.description", out)
    bundle = json.dumps(shared_objects(data, out), ensure_ascii=False)
    for personal in ("taro.yamada", "090-1234-5678", "tanaka", "Users\\\\"):
        assert personal not in bundle


def test_prepare_from_a_stored_incident_keeps_private_addresses_out_of_the_observables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    incident_id = records_with_incident(data, _alert(ip="10.1.2.3"))
    code, out = share(data, "--incident-id", str(incident_id))
    assert code == 0, out
    bundle = json.dumps(shared_objects(data, out))
    assert "10.1.2.3" not in bundle
    assert not [o for o in shared_objects(data, out) if o["type"] == "ipv4-addr"]


def test_prepared_incident_share_publishes_into_the_service_outgoing_collection(tmp_path: Path) -> None:
    data = tmp_path / "data"
    incident_id = records_with_incident(data)
    code, out = share(data, "--incident-id", str(incident_id))
    assert code == 0, out
    share_id = re.search(r"share ([0-9a-f-]{36})", out).group(1)  # type: ignore[union-attr]
    assert f"mamori intel share publish {share_id} --db {data / 'intel.db'}" in out
    published = CliRunner().invoke(intel, ["share", "publish", share_id, "--db", str(data / "intel.db")])
    assert published.exit_code == 0, published.output
    store = IntelStore.open(data / "intel.db")
    outgoing = store.require_collection("outgoing")
    assert outgoing.outgoing
    assert store.count(outgoing.id) == len(shared_objects(data, out))


def test_amber_from_a_stored_incident_goes_only_to_configured_partners(tmp_path: Path) -> None:
    data = tmp_path / "data"
    incident_id = records_with_incident(data)
    partners = {"MAMORI_TAXII_PARTNERS": "jpcert, nisc"}
    code, out = share(data, "--incident-id", str(incident_id), "--tlp", "amber", env=partners)
    assert code == 2 and "TLP:AMBER may go only to named partners" in out
    code, out = share(data, "--incident-id", str(incident_id), "--tlp", "amber", "--to", "mallory", env=partners)
    assert code == 2 and "not TLP partners: mallory" in out and "jpcert, nisc" in out
    code, out = share(data, "--incident-id", str(incident_id), "--tlp", "amber", "--to", "jpcert", env=partners)
    assert code == 0, out
    assert "TLP:AMBER  to jpcert" in out


def test_red_from_a_stored_incident_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    incident_id = records_with_incident(data)
    code, out = share(data, "--incident-id", str(incident_id), "--tlp", "red")
    assert code == 2 and "TLP:RED information never leaves Mamori" in out
    assert not (data / "intel.db").exists()


def test_incident_id_and_incident_file_together_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    incident_id = records_with_incident(data)
    incident = tmp_path / "incident.json"
    incident.write_text("{}", encoding="utf-8")
    code, out = share(data, "--incident-id", str(incident_id), "--incident", str(incident))
    assert code == 2 and "--incident-id: give one source of incident" in out


def test_unknown_incident_id_names_the_incident(tmp_path: Path) -> None:
    data = tmp_path / "data"
    records_with_incident(data)
    code, out = share(data, "--incident-id", "999")
    assert code == 2 and "no incident 999" in out


def test_a_folder_without_a_records_database_is_named_with_a_hint(tmp_path: Path) -> None:
    code, out = share(tmp_path / "empty", "--incident-id", "1")
    assert code == 2 and "no Mamori database in" in out and "--data-dir" in out
