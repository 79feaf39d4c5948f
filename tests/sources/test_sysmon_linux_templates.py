"""Sysmon for Linux reads the ``<Data>`` elements of the rows that repeat a kind of event's names as a
whole (a template per kind, checked by putting the row's values back into the template's text): the
frame is the one the element regex gives, for the rows read so and for every other row alike."""

from __future__ import annotations

import random

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mamori.sources import sysmon_linux
from mamori.sources.base import ReadOptions
from mamori.sources.kv import pairs_frame
from mamori.sources.sysmon_linux import DATA, data_fields, parse_sysmon_linux

PROCESS = [("RuleName", "-"), ("UtcTime", "2021-10-14 11:07:39.530"), ("Image", "/usr/bin/curl"),
           ("CommandLine", "curl -s http://x/?a=1&amp;b=&lt;2&gt;"), ("User", "root")]
NETWORK = [("RuleName", "-"), ("UtcTime", "2021-10-14 11:08:00.000"), ("DestinationIp", "10.0.0.9"),
           ("DestinationPort", "4444")]


def _event(data: list[tuple[str, str]], event_id: str = "1", tail: str = "</EventData></Event>") -> str:
    elements = "".join(f'<Data Name="{name}">{value}</Data>' for name, value in data)
    return (f'<Event><System><Provider Name="Linux-Sysmon"/><EventID>{event_id}</EventID><TimeCreated '
            f'SystemTime="2021-10-14T11:07:39.523940000Z"/><Execution ProcessID="2345"/><Channel>'
            f"Linux-Sysmon/Operational</Channel><Computer>h</Computer></System><EventData>{elements}{tail}")


@pytest.fixture(autouse=True)
def _templates_for_small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batches here are small: let a kind of a row or two take a template."""
    monkeypatch.setattr(sysmon_linux, "TEMPLATE_ROWS", 1)


def _by_regex(texts: pl.Series) -> pl.DataFrame:
    """What the element regex reads: the meaning ``data_fields`` keeps."""
    return pairs_frame(texts.str.extract_all(DATA).list.eval(
        pl.element().str.replace(r'^<Data Name="([^"]+)">([^<]*)</Data>$', "${1}=${2}")), unquote=False)


ODD_ROWS = {
    "names in another order": _event(PROCESS[::-1]),
    "a name missing": _event(PROCESS[:3]),
    "a name given twice": _event([*PROCESS, ("Image", "/second")]),
    "a value holding '>'": _event([*PROCESS[:2], ("Image", "a>b")]),
    "a value holding '<'": _event([*PROCESS[:2], ("Image", "a<b")]),
    "a value holding '</Data'": _event([*PROCESS[:2], ("Image", "a</Data")]),
    "a value holding '\">'": _event([*PROCESS[:2], ("Image", 'a">b')]),
    "a space between elements": _event(PROCESS).replace("</Data><Data", "</Data> <Data", 1),
    "another end": _event(PROCESS, tail="</EventData><x/></Event>"),
    "an element after the end": _event(PROCESS, tail='</EventData></Event><Data Name="Late">v</Data>'),
    "non-ASCII names and values": _event([("ユーザー", "山田"), ("UtcTime", "2021-10-14 11:07:39.530")]),
    "an empty value": _event([("Empty", ""), *NETWORK]),
    "no element": "Oct 14 11:07:39 ubuntu sysmon: starting",
    "a self-closing element": _event([*PROCESS[:2], ("Image", "x")]).replace('<Data Name="Image">x</Data>',
                                                                              '<Data Name="Image"/>'),
}


def _spy_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the rows ``_template_rows`` reads as a template's."""
    read: list[int] = []
    real = sysmon_linux._template_rows

    def spy(sections: pl.Series, names: list[str], tail: str) -> tuple[pl.Series, list[pl.Series]]:
        rows, values = real(sections, names, tail)
        read.append(len(rows))
        return rows, values

    monkeypatch.setattr(sysmon_linux, "_template_rows", spy)
    return read


def test_rows_of_two_kinds_are_read_by_their_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = pl.Series([_event(PROCESS), _event(NETWORK, "3")] * 50)
    read = _spy_rows(monkeypatch)
    frame = data_fields(texts)
    assert read == [50, 50]
    assert_frame_equal(frame, _by_regex(texts))
    assert frame.columns == ["RuleName", "UtcTime", "Image", "CommandLine", "User", "DestinationIp", "DestinationPort"]
    assert frame["DestinationPort"].to_list()[:2] == [None, "4444"]


@pytest.mark.parametrize("case", list(ODD_ROWS))
def test_a_row_off_the_template_reads_as_the_element_regex_reads_it(case: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The odd row is read the long way (or as a template of its own), the others by the template."""
    texts = pl.Series([_event(PROCESS)] * 3 + [ODD_ROWS[case]] + [_event(PROCESS), _event(NETWORK, "3")])
    read = _spy_rows(monkeypatch)
    frame = data_fields(texts)
    assert read[0] == 4
    assert_frame_equal(frame, _by_regex(texts))
    assert frame.columns == _by_regex(texts).columns


@pytest.mark.parametrize("case", list(ODD_ROWS))
def test_an_odd_first_row_reads_as_the_element_regex_reads_it(case: str) -> None:
    texts = pl.Series([ODD_ROWS[case], _event(PROCESS), _event(NETWORK, "3"), ODD_ROWS[case], _event(PROCESS)])
    assert_frame_equal(data_fields(texts), _by_regex(texts))


def test_random_batches_of_events_read_as_the_element_regex_reads_them() -> None:
    r = random.Random(3)
    names = ["Image", "User", "UtcTime", "a=b", "Img", "ユーザー", "x>y", "Q"]
    values = ["", "v", "a&amp;b", "<", ">", "</Data", '">', "é", "1 2"]
    kinds = [[(r.choice(names), r.choice(values)) for _ in range(r.randint(0, 4))] for _ in range(6)]
    for _ in range(60):
        texts = pl.Series([_event(r.choice(kinds)) if r.random() < 0.9 else _event(
            [(r.choice(names), r.choice(values)) for _ in range(3)]) for _ in range(r.randint(1, 40))])
        assert_frame_equal(data_fields(texts), _by_regex(texts))


def test_header_time_is_read_only_for_events_without_a_time_of_their_own() -> None:
    """The syslog header's time fills the events with neither ``UtcTime`` nor ``SystemTime``."""
    timed = _event(PROCESS)
    untimed = "<14>Oct 14 11:07:39 ubuntu sysmon: <Event><System><EventID>1</EventID></System></Event>"
    frame = parse_sysmon_linux(pl.Series([timed, untimed]), ReadOptions(default_year=2024))
    assert frame["_time"].dt.to_string("%Y-%m-%dT%H:%M:%S%.3f").to_list() == [
        "2021-10-14T11:07:39.530", "2024-10-14T11:07:39.000"]
