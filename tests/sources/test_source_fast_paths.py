"""The shortcuts the readers take for speed give what the long way gives: joined record bytes, regexes
run one by one, plain ISO times, epochs, header-less syslog batches, Sysmon ``<Data>`` elements."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_series_equal

from mamori.sources.base import ReadOptions
from mamori.sources.batch import contains_any, joined_lines
from mamori.sources.kv import pairs_frame
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.sysmon_linux import data_fields
from mamori.sources.timeparse import parse_epoch, parse_iso


def test_joined_lines_are_the_texts_each_ending_with_a_line_break() -> None:
    texts = pl.Series(["a,b", "", "é\u3042", None, "x"])
    assert joined_lines(texts) == "a,b\n\né\u3042\n\nx\n".encode()
    assert joined_lines(texts.slice(2, 2)) == "é\u3042\n\n".encode()
    assert joined_lines(pl.Series([], dtype=pl.Utf8)) == b""


def test_contains_any_matches_as_the_alternation_of_its_regexes() -> None:
    texts = pl.Series(["CEF:0|a|b|", "<13>x CEF: 1|", " 0|v|p|rest", "plain", None, "1|x"])
    patterns = (r"CEF: ?\d", r"^\s*\d\|[^|]*\|[^|]*\|")
    assert_series_equal(contains_any(texts, patterns), texts.str.contains("(?:" + "|".join(patterns) + ")"))
    assert contains_any(texts, r"plain").to_list() == [False, False, False, True, None, False]


def test_plain_iso_times_parse_as_the_rewritten_ones() -> None:
    plain = pl.Series(["2024-04-01T00:00:10Z", "2024-04-01T09:00:10.123456789+09:00", "2024-04-01T00:00:10+0100",
                       None, "2024-04-01T00:00:10"])
    odd = pl.Series([" 2024-04-01T00:00:10Z", "2024-04-01 09:00:10.1234567891+09:00", "2024-04-01T00:00:10 UTC",
                     None, "2024-04-01T00:00"])
    assert parse_iso(plain, "Asia/Tokyo").dt.to_string("%Y-%m-%dT%H:%M:%S%.9f").to_list() == [
        "2024-04-01T00:00:10.000000000", "2024-04-01T00:00:10.123456789", "2024-03-31T23:00:10.000000000", None,
        "2024-03-31T15:00:10.000000000"]
    assert parse_iso(odd, "UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.9f").to_list() == [
        "2024-04-01T00:00:10.000000000", "2024-04-01T00:00:10.123456789", "2024-04-01T00:00:10.000000000", None,
        "2024-04-01T00:00:00.000000000"]


def test_epochs_read_decimal_seconds_only_where_no_integer_was_read() -> None:
    values = pl.Series([" 1700000000 ", "1700000000.5", "1700000000000", "x", None, "1700000000123456789"])
    assert parse_epoch(values).dt.epoch("ns").to_list() == [
        1_700_000_000_000_000_000, 1_700_000_000_500_000_000, 1_700_000_000_000_000_000, None, None,
        1_700_000_000_123_456_789]
    assert parse_epoch(pl.Series(["1700000000", None])).dt.epoch("s").to_list() == [1_700_000_000, None]


def test_a_batch_without_syslog_headers_keeps_each_line_as_its_message() -> None:
    parts = syslog_parts(pl.Series(["k=v a=b", "  padded x=1 ", None]), ReadOptions(default_year=2024))
    assert parts["message"].to_list() == ["k=v a=b", "padded x=1", ""]
    assert parts["hostname"].null_count() == 3 and parts["_time"].null_count() == 3
    bare = syslog_parts(pl.Series(["sshd[42]: hello", "k=v"]), ReadOptions(default_year=2024))
    assert bare["program"].to_list() == ["sshd", None] and bare["message"].to_list() == ["hello", "k=v"]


def test_sysmon_data_elements_read_as_name_equals_value_pairs() -> None:
    texts = pl.Series(['<Data Name="Image">/bin/a">b</Data><Data Name="User">root</Data><Data Name="Image">x</Data>',
                       '<Data Name="CommandLine">a=b &amp; c</Data><Data Name="Empty"></Data>', None, "none"])
    frame = data_fields(texts)
    assert frame.columns == ["Image", "User", "CommandLine", "Empty"]
    assert frame["Image"].to_list() == ['/bin/a">b', None, None, None]
    assert frame["CommandLine"].to_list() == [None, "a=b &amp; c", None, None]
    assert frame["Empty"].to_list() == [None, "", None, None]
    named = pl.Series(['<Data Name="a=b">c</Data>'])  # a name holding "=" is cut there, as K=V is
    assert data_fields(named).to_dict(as_series=False) == pairs_frame(pl.Series([["a=b=c"]])).to_dict(as_series=False)


def test_sysmon_data_elements_of_random_text_are_those_the_element_regex_finds() -> None:
    import random

    r = random.Random(5)
    bits = ['<Data Name="', '">', "</Data>", "<", '"', "a", "Img", " ", "\n", ">", "&amp;", "x"]
    texts = pl.Series(["".join(r.choice(bits) for _ in range(r.randint(0, 40))) for _ in range(1500)])
    cut_only = 0
    for start in range(0, len(texts), 3):  # small batches: many take the cut, some the regex
        batch = texts.slice(start, 3)
        by_regex = pairs_frame(batch.str.extract_all(r'<Data Name="[^"]+">[^<]*</Data>').list.eval(
            pl.element().str.replace(r'^<Data Name="([^"]+)">([^<]*)</Data>$', "${1}=${2}")), unquote=False)
        assert data_fields(batch).to_dict(as_series=False) == by_regex.to_dict(as_series=False)
        cut_only += by_regex.width > 0 and not batch.str.contains('<Data Name=">|<Data Name="[^"]*=').any()
    assert cut_only > 25
