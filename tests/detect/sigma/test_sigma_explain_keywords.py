"""The keywords a detection lists are the ones the engine's keyword test found: in the raw record as
written or as JSON spells it, wildcards and windash classes included."""

from __future__ import annotations

from mamori_testing import ruleset_from

from mamori.detect.sigma.explain import keywords_found

RULE = """
title: Keywords (test rule)
id: 0c1a0000-0000-4000-8000-00000000ee01
logsource: {product: windows}
detection:
    keywords:
        - 'C:\\Windows\\Temp\\evil.exe'
        - 'mimi*kiwi'
    dashed:
        '|windash':
            - ' -enc '
    condition: keywords or dashed
"""


def test_a_backslash_keyword_is_listed_when_a_json_record_spells_it_escaped() -> None:
    rule = ruleset_from(RULE).rules[0]
    raw_json = '{"CommandLine": "C:\\\\Windows\\\\Temp\\\\evil.exe /run"}'
    assert keywords_found(rule, ["keywords"], raw_json) == ["C:\\Windows\\Temp\\evil.exe"]
    assert keywords_found(rule, ["keywords"], "C:\\Windows\\Temp\\evil.exe /run") == ["C:\\Windows\\Temp\\evil.exe"]


def test_wildcards_and_windash_classes_are_searched_as_the_rule_means_them() -> None:
    rule = ruleset_from(RULE).rules[0]
    assert keywords_found(rule, None, "MIMI and KIWI") == ["mimi*kiwi"]
    assert keywords_found(rule, ["dashed"], "powershell /enc AAAA") != []
    assert keywords_found(rule, ["dashed"], "powershell xenc AAAA") == []
