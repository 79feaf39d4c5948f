"""Each Sigma value modifier, on events written here."""

from __future__ import annotations

import base64
from collections.abc import Callable

import polars as pl
from mamori_testing import ruleset_from

from mamori.detect.sigma.engine import Detector
from mamori.detect.sigma.required_literal import required_literal
from mamori.sources.winjson import records_to_frame

Matcher = Callable[..., list[int]]


def rule(detection: str) -> str:
    return f"""
        title: t
        id: 00000000-0000-0000-0000-000000000001
        logsource: {{}}
        detection:
{detection}
        level: high
    """


def one(item: str) -> str:
    """A rule with one selection holding one detection item."""
    return rule(f"            sel:\n                {item}\n            condition: sel")


def test_plain_value_is_case_insensitive_equality(match: Matcher) -> None:
    events = [{"Image": "C:\\Windows\\CMD.EXE"}, {"Image": "c:\\windows\\cmd.exe "}, {"Image": "c:\\windows\\cmd.exe"}]
    r = one("Image: 'C:\\Windows\\cmd.exe'")
    assert match(r, events) == [0, 2]


def test_contains_startswith_endswith(match: Matcher) -> None:
    events = [{"CommandLine": "powershell -enc AAA"}, {"CommandLine": "cmd /c whoami"}, {"CommandLine": "x whoami"}]
    assert match(one("CommandLine|contains: '-ENC'"),
                 events) == [0]
    assert match(one("CommandLine|startswith: 'cmd'"),
                 events) == [1]
    assert match(one("CommandLine|endswith: 'WHOAMI'"),
                 events) == [1, 2]


def test_list_values_are_or_and_all_makes_them_and(match: Matcher) -> None:
    events = [{"CommandLine": "net user /add"}, {"CommandLine": "net user"}, {"CommandLine": "net /add"}]
    any_rule = one("CommandLine|contains:\n                    - 'user'\n"
                    "                    - '/add'")
    all_rule = one("CommandLine|contains|all:\n                    - 'user'\n"
                    "                    - '/add'")
    assert match(any_rule, events) == [0, 1, 2]
    assert match(all_rule, events) == [0]


def test_wildcards_and_escapes(match: Matcher) -> None:
    events = [{"F": "abc"}, {"F": "a*c"}, {"F": "axxc"}, {"F": "a?c"}, {"F": "a\\c"}]
    assert match(one("F: 'a*c'"), events) == [0, 1, 2, 3, 4]
    assert match(one("F: 'a?c'"), events) == [0, 1, 3, 4]
    assert match(one("F: 'a\\*c'"), events) == [1]
    assert match(one("F: 'a\\?c'"), events) == [3]
    assert match(one("F: 'a\\c'"), events) == [4]


def test_cased_modifier_makes_matching_case_sensitive(match: Matcher) -> None:
    events = [{"F": "Mimikatz"}, {"F": "mimikatz"}]
    assert match(one("F|cased: 'Mimikatz'"), events) == [0]
    assert match(one("F|contains|cased: 'mimi'"),
                 events) == [1]


def test_base64_and_base64offset(match: Matcher) -> None:
    plain = base64.b64encode(b"http://evil").decode()
    shifted = [base64.b64encode(prefix + b"http://evil").decode() for prefix in (b"x", b"xy")]
    events = [{"F": f"a {plain} b"}, {"F": shifted[0]}, {"F": shifted[1]}, {"F": "aHR0cDovL2dvb2Q="}]
    assert match(one("F|base64|contains: 'http://evil'"),
                 events) == [0]
    assert match(one("F|base64offset|contains: 'http://evil'\n"
                      "            condition: sel"), events) == [0, 1, 2]


def test_utf16_wide_with_base64offset_finds_powershell_encoded_command(match: Matcher) -> None:
    encoded = base64.b64encode("IEX (New-Object Net.WebClient)".encode("utf-16-le")).decode()
    events = [{"CommandLine": f"powershell -e {encoded}"}, {"CommandLine": "powershell -e AAAA"}]
    assert match(one("CommandLine|wide|base64offset|contains: 'New-Object'\n"
                      "            condition: sel"), events) == [0]
    utf16be = base64.b64encode("New-Object".encode("utf-16-be")).decode()
    assert match(one("CommandLine|utf16be|base64|contains: 'New-Object'\n"
                      "            condition: sel"), [{"CommandLine": utf16be}, *events]) == [0]


def test_windash_matches_every_dash_spelling(match: Matcher) -> None:
    events = [{"C": "ping -n 1"}, {"C": "ping /n 1"}, {"C": "ping \u2013n 1"}, {"C": "ping \u2014n 1"},
              {"C": "ping \u2015n 1"}, {"C": "ping n 1"}]
    assert match(one("C|windash|contains: ' -n '"),
                 events) == [0, 1, 2, 3, 4]


def test_re_is_case_sensitive_unless_i(match: Matcher) -> None:
    events = [{"C": "Invoke-Mimikatz"}, {"C": "invoke-mimikatz"}, {"C": "line1\nmimi"}]
    assert match(one("C|re: 'Invoke-\\w+'"), events) == [0]
    assert match(one("C|re|i: 'invoke-MIMI'"),
                 events) == [0, 1]
    assert match(one("C|re|m: '^mimi$'"), events) == [2]
    assert match(one("C|re|s: 'line1.mimi'"), events) == [2]


def test_re_runs_only_where_its_fixed_text_occurs_yet_keeps_case_rules(match: Matcher) -> None:
    # the engine looks the expression's fixed text up first (lower-cased); the expression decides
    events = [{"C": "C:\\Windows\\System32\\ntdll.dll+1a2b"}, {"C": "c:\\windows\\system32\\NTDLL.DLL+1a2b"},
              {"C": "C:\\Windows\\System32\\ntdll.dll+zz"}, {"C": "other"}, {"C": "x"}]
    assert match(one("C|re: '^C:\\\\Windows\\\\System32\\\\ntdll\\.dll\\+[a-z0-9]{4}$'"), events) == [0]
    assert match(one("C|re|i: '^C:\\\\Windows\\\\System32\\\\ntdll\\.dll\\+[a-z0-9]{4}$'"), events) == [0, 1]
    assert match(one("C: 'c:\\windows\\sys*\\ntdll.dll+*b'"), events) == [0, 1]
    assert match(one("C|re: 'absent-text\\d'"), events) == []


def test_required_text_of_an_expression_is_its_longest_mandatory_literal_run() -> None:
    assert required_literal(r"^C:\\Windows\\ntdll\.dll\+[a-z]{4}") == "c:\\windows\\ntdll.dll+"
    assert required_literal(r"https?://[0-9]+") == "http"
    assert required_literal(r"(abc)def") == "abcdef"  # a plain group is part of the run
    assert required_literal(r"(ab|cd)efg") == "efg"  # alternatives are not mandatory
    assert required_literal(r"abc|defgh") is None  # nor is either side of a top-level alternative
    assert required_literal(r"x(?:abcd)+y") is None  # repeated groups are skipped
    assert required_literal(r"ab.c") is None  # runs shorter than three say nothing
    assert required_literal(r"\Qabc\E") is None  # what Python cannot parse gets no filter


def test_re_with_lookahead_falls_back_to_python(match: Matcher) -> None:
    events = [{"C": "foo bar"}, {"C": "foo baz"}]
    assert match(one("C|re: 'foo (?!bar)'"), events) == [1]


def test_cidr_for_ipv4_and_ipv6(match: Matcher) -> None:
    events = [{"Ip": "10.1.2.3"}, {"Ip": "11.0.0.1"}, {"Ip": "fe80::1"}, {"Ip": "2001:db8::1"}, {"Ip": "junk"}]
    r = one("Ip|cidr:\n                    - '10.0.0.0/8'\n"
             "                    - 'fe80::/10'")
    assert match(r, events) == [0, 2]


def test_cidr_reads_dotted_quads_with_spaces_around_and_refuses_the_rest(match: Matcher) -> None:
    events = [{"Ip": " 10.0.0.5 "}, {"Ip": "10.0.0.5\u00a0"}, {"Ip": "010.000.000.005"}, {"Ip": "10.0.0.256"},
              {"Ip": "10.0.0"}, {"Ip": "10.0.0.5.1"}, {"Ip": "١٠.0.0.5"}, {"Ip": "10.0.0.5 x"}]
    assert match(one("Ip|cidr: '10.0.0.0/8'"), events) == [0, 1, 2]


def test_exists_true_and_false(match: Matcher) -> None:
    events = [{"A": "1"}, {"B": "2"}, {"A": ""}]
    assert match(one("A|exists: true"), events) == [0, 2]
    assert match(one("A|exists: false"), events) == [1]


def test_null_matches_absent_or_empty_fields(match: Matcher) -> None:
    events = [{"A": "1"}, {"B": "2"}, {"A": ""}]
    assert match(one("A: null"), events) == [1, 2]


def test_numeric_comparisons(match: Matcher) -> None:
    events = [{"N": "5"}, {"N": "10"}, {"N": "15"}, {"N": "x"}]
    assert match(one("N|gt: 5"), events) == [1, 2]
    assert match(one("N|gte: 10"), events) == [1, 2]
    assert match(one("N|lt: 10"), events) == [0]
    assert match(one("N|lte: 10"), events) == [0, 1]


def test_fieldref_compares_two_fields(match: Matcher) -> None:
    events = [{"A": "bob", "B": "BOB"}, {"A": "bob", "B": "alice"}, {"A": "xbobx", "B": "bob"}]
    assert match(one("A|fieldref: B"), events) == [0]
    assert match(one("A|fieldref|contains: B"),
                 events) == [0, 2]


def test_expand_uses_placeholder_values(match: Matcher) -> None:
    events = [{"Computer": "ADMIN-PC1"}, {"Computer": "desk-7"}, {"Computer": "admin-pc2"}]
    r = one("Computer|expand: '%Admins_Workstations%'")
    assert match(r, events, placeholders={"Admins_Workstations": ["admin-pc1", "admin-pc2"]}) == [0, 2]


def test_keywords_search_every_field(match: Matcher) -> None:
    events = [{"A": "x", "Msg": "user MIMIKATZ ran"}, {"A": "mimi"}, {"Other": "sekurlsa::logonpasswords"}]
    r = rule("            keywords:\n                - 'mimikatz'\n                - 'sekurlsa::'\n"
             "            condition: keywords")
    assert match(r, events) == [0, 2]


def test_keywords_with_wildcards_are_found_beside_plain_keywords_of_other_rules() -> None:
    # every keyword rule's text pre-selects the raw records worth searching: a wildcard keyword
    # must not be lost to the plain keywords of another rule
    plain = rule("            keywords:\n                - 'sekurlsa::'\n            condition: keywords")
    wild = rule("            keywords:\n                - 'mimi*katz'\n                - 'x?z'\n"
                "            condition: keywords").replace("0001", "0002")
    events = [{"Msg": "ran MIMI-the-KATZ"}, {"Msg": "sekurlsa::logonpasswords"}, {"Msg": "xaz"}, {"Msg": "none"}]
    hits = Detector(ruleset_from(plain, wild)).detect(records_to_frame(events, "test"))
    by_rule = {r: sorted(hits.filter(pl.col("rule_id") == r).get_column("_row").to_list())
               for r in hits.get_column("rule_id").unique()}
    assert by_rule == {"00000000-0000-0000-0000-000000000001": [1], "00000000-0000-0000-0000-000000000002": [0, 2]}


def test_integer_values_compare_as_text(match: Matcher) -> None:
    events = [{"EventID": 4688}, {"EventID": "4689"}]
    assert match(one("EventID: 4688"), events) == [0]
