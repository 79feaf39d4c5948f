"""The service loads its rules with the placeholder values of its configuration, and its parser processes
load the very same rule set (same digest), so they match the batches instead of leaving it to the service."""

from __future__ import annotations

from pathlib import Path

from mamori.config import load_settings
from mamori.service import match_ahead
from mamori.service.runtime import Service

RULE = """
title: Logon From An Admin Workstation
id: 0c1a0000-0000-4000-8000-00000000e003
status: test
level: medium
author: Mamori tests
logsource: {product: windows, service: security}
detection:
    selection:
        EventID: 4624
        WorkstationName|expand: '%Admin_Workstations%'
    condition: selection
"""


def test_service_rules_take_the_configured_placeholders_and_parser_processes_load_the_same_set(
        tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "admin_logon.yml").write_text(RULE)
    values = tmp_path / "placeholders.yml"
    values.write_text("Admin_Workstations: [ADM-WS01]\n")
    config = tmp_path / "mamori.toml"
    config.write_text(f'rules = ["{rules}"]\nplaceholders = "{values}"\n')
    settings = load_settings(config, env={}, data_dir=tmp_path / "data", syslog_tcp_port=-1, syslog_udp_port=-1)
    service = Service(settings)
    try:
        assert [r.id for r in service.stage.rules()] == ["0c1a0000-0000-4000-8000-00000000e003"]
        spec = service.stage.match_spec()
        assert spec is not None and spec.placeholders == (("Admin_Workstations", ("ADM-WS01",)),)
        loaded = match_ahead._detector(spec)  # what a parser process does with the spec
        assert loaded is not None and loaded.ruleset.digest == spec.digest
    finally:
        service.spool.close()
        service.engine.dispose()
