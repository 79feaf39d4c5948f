"""Rules read the same as PyYAML (YAML 1.1, pySigma's reading) reads them, whichever parser ran."""

from __future__ import annotations

import pytest
import yaml

from mamori.detect.sigma.loader import build_rule, parse_rule_text

RULE = """title: t
id: 11111111-2222-3333-4444-555555555555
logsource: {{product: windows}}
detection:
    selection:
        {line}
    condition: selection
"""

LINES = [
    "AccessMask: 0755",  # octal in YAML 1.1, 755 in 1.2
    "AccessMask: [0755, 010]",
    "AccessMask: [1,010]",
    "Flag: yes",  # a boolean in YAML 1.1 only
    "Flag: [on, Off]",
    "Duration: 1:20",  # sexagesimal (80) in YAML 1.1 only
    "LogonGuid: 00000000-0000-0000-0000-000000000000",  # starts with 0 but is text in both
    "Hashes|contains: 0b5d1e7a",
    "Image|endswith: '\\\\on'",
    "CommandLine|contains: ' no '",
    "ProcessId: 0x1f4",
    "EventID: 4624",
]


@pytest.mark.parametrize("line", LINES)
def test_rule_values_read_as_pyyaml_reads_them(line: str) -> None:
    text = RULE.format(line=line)
    rules, refused = parse_rule_text("rule.yml", text.encode())
    assert not refused
    expected = build_rule(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), "rule.yml", None)
    assert rules == [expected]
