"""Values for the rules' ``|expand`` placeholders come from a YAML file the organisation keeps; a bad
file is a clear error naming it, and a rule whose placeholder has no value is refused with its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from mamori.detect.sigma.placeholders import read_placeholders
from mamori.detect.sigma.ruleset import load_ruleset
from mamori.errors import MamoriError

RULE = """
title: Logon From An Admin Workstation
id: 0c1a0000-0000-4000-8000-00000000e002
status: test
level: medium
author: Mamori tests
logsource: {product: windows, service: security}
detection:
    selection:
        EventID: 4624
        WorkstationName|expand|startswith: '%Admin_Workstations%'
    condition: selection
"""


def test_placeholder_file_maps_names_with_or_without_percent_signs_to_value_lists(tmp_path: Path) -> None:
    path = tmp_path / "placeholders.yml"
    path.write_text("Admin_Workstations: [ADM-WS01, ADM-WS02]\n'%userdomain%': CORP\nports: [445, 3389]\n")
    assert read_placeholders(path) == {"Admin_Workstations": ("ADM-WS01", "ADM-WS02"), "userdomain": ("CORP",),
                                       "ports": ("445", "3389")}


@pytest.mark.parametrize("text", ["- a\n- b\n", "Admins:\n  nested: x\n", "Admins: [a, [b]]\n", "Admins:\n",
                                  "Admins: [a\n"])
def test_a_placeholder_file_that_is_not_names_to_values_is_a_clear_error_naming_the_file(tmp_path: Path,
                                                                                         text: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(MamoriError) as caught:
        read_placeholders(path)
    assert caught.value.where == str(path)


def test_rules_expand_the_file_values_and_are_refused_with_the_placeholder_name_without_them(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "admin_logon.yml").write_text(RULE)
    refused = load_ruleset([rules], use_cache=False).refused
    assert len(refused) == 1 and "placeholder %Admin_Workstations% has no values" in refused[0].reason
    values = {"Admin_Workstations": ("ADM-WS01", "ADM-WS02")}
    ruleset = load_ruleset([rules], placeholders=values, use_cache=False)
    assert not ruleset.refused and len(ruleset.rules) == 1
    item = ruleset.rules[0].selections[0].maps[0][1]
    assert item.field == "WorkstationName" and len(item.alternatives[0]) == 2  # a variant per workstation
