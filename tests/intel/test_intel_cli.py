"""`mamori intel` commands: import, list, export, feeds, share."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from mamori.intel.cli import intel

DATA = Path(__file__).parent / "data"


def run(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(intel, [*args, "--db", str(db)], catch_exceptions=False)
    return result.exit_code, result.output


def test_import_then_list_shows_indicators_with_tlp_confidence_and_source(tmp_path: Path) -> None:
    db = tmp_path / "intel.db"
    code, out = run(
        db,
        "import",
        str(DATA / "jpcert_phishurl.csv"),
        "--kind",
        "csv",
        "--name",
        "jpcert",
        "--value-type",
        "url",
        "--column",
        "value=URL",
        "--column",
        "date=date",
        "--tlp",
        "clear",
        "--confidence",
        "80",
    )
    assert code == 0 and "stored 2" in out
    code, out = run(db, "list")
    assert "TLP:CLEAR" in out and " 80 " in out and "[feed:jpcert]" in out
    code, out = run(db, "list", "--collections", "--json")
    assert json.loads(out.splitlines()[0])["objects"] == 2


def test_export_leaves_out_what_the_recipient_may_not_receive(tmp_path: Path) -> None:
    db = tmp_path / "intel.db"
    run(db, "import", str(DATA / "misp"), "--kind", "misp", "--name", "misp")
    public, partner = tmp_path / "public.json", tmp_path / "partner.json"
    assert run(db, "export", "--collection", "feeds", "--out", str(public))[0] == 0
    assert run(db, "export", "--collection", "feeds", "--out", str(partner), "--to", "jpcert", "--partner")[0] == 0
    public_patterns = {o.get("pattern") for o in json.loads(public.read_text())["objects"]}
    partner_patterns = {o.get("pattern") for o in json.loads(partner.read_text())["objects"]}
    assert "[domain-name:value = 'c2.intrusion.example']" in partner_patterns - public_patterns


def test_feeds_run_from_a_yaml_file_and_report_status(tmp_path: Path) -> None:
    db, config = tmp_path / "intel.db", tmp_path / "feeds.yaml"
    config.write_text(
        f"feeds:\n  - {{name: list, kind: text, location: '{DATA / 'iocs.txt'}'}}\n"
        f"  - {{name: broken, kind: stix, location: '{tmp_path / 'missing.json'}'}}\n",
        encoding="utf-8",
    )
    code, out = run(db, "feeds", "run", "--config", str(config))
    assert code == 0 and "list: fetched 5, stored 5" in out
    code, out = run(db, "feeds", "status", "--config", str(config))
    assert "ERROR" in out and "missing.json" in out


def test_share_prepare_review_publish(tmp_path: Path) -> None:
    db = tmp_path / "intel.db"
    incident = tmp_path / "incident.json"
    incident.write_text(
        json.dumps(
            {
                "id": "INC-1",
                "title": "Phishing",
                "description": "田中さん tanaka@example.co.jp 090-1111-2222",
                "alerts": [
                    {
                        "id": "a1",
                        "time": "2024-05-01T00:00:00Z",
                        "entities": {"domain": ["evil.example"]},
                        "rule": {"tags": ["attack.t1566.002"]},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    code, out = run(db, "share", "prepare", "--incident", str(incident), "--tlp", "amber", "--to", "jpcert")
    assert code == 0, out
    share_id = re.search(r"share ([0-9a-f-]{36})", out).group(1)  # type: ignore[union-attr]
    assert "redacted email" in out and "redacted phone" in out and "redacted name" in out
    code, out = run(db, "share", "review", share_id)
    assert "draft" in out and "TLP:AMBER" in out and "jpcert" in out
    code, out = run(db, "share", "publish", share_id)
    assert code == 0 and "0 failed" in out
    assert "published" in run(db, "share", "list")[1]


def test_errors_name_where_and_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "intel.db"
    code, out = run(db, "share", "prepare", "--tlp", "red")
    assert code == 2 and "TLP:RED information never leaves" in out
    code, out = run(db, "import", str(tmp_path / "nope.json"))
    assert code == 0 and "FAILED" in out and "nope.json" in out
