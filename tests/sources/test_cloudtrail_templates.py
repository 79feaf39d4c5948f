"""CloudTrail reads a batch made of a few kinds of records by their templates (``json_templates``): the
frame is the one the per-record path gives (columns, their order, values, dtypes), whether a batch is
read so or declined, and whatever odd record sits among the others."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mamori.sources import batch, cloudtrail, json_templates
from mamori.sources.base import ReadOptions
from mamori.sources.cloudtrail import EVENT_KEYS, _is_event, parse_cloudtrail
from mamori.sources.json_templates import template_fields, template_of

EVENT: dict[str, Any] = {
    "eventVersion": "1.08",
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/sato", "userName": "sato"},
    "eventTime": "2024-04-01T00:00:10Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "GetObject",
    "sourceIPAddress": "198.51.100.1",
    "requestParameters": {"bucketName": "logs", "key": "a/b"},
    "responseElements": None,
    "readOnly": True,
    "recipientAccountId": "1",
}
LOGIN = {"eventVersion": "1.08", "eventName": "ConsoleLogin", "eventTime": "2024-04-01T00:00:11Z",
         "responseElements": {"ConsoleLogin": "Failure"}, "additionalEventData": {"MFAUsed": "No"}}


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def _events(n: int, shape: dict[str, Any] = EVENT) -> list[str]:
    """``n`` records of one shape, their string values told apart."""
    def vary(value: Any, i: int) -> Any:
        if isinstance(value, dict):
            return {k: vary(v, i) for k, v in value.items()}
        return f"{value}-{i}" if isinstance(value, str) and not value.startswith("20") else value
    return [_dump(vary(shape, i)) for i in range(n)]


def _per_record(texts: pl.Series, monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    """The reference: CloudTrail's parser as it was, each record decoded on its own."""
    with monkeypatch.context() as patch:
        patch.setattr(batch, "_fast_json_fields", lambda *args, **kwargs: None)
        frame = batch.json_fields(texts, _is_event, EVENT_KEYS)
        return batch.finish_json(frame, ReadOptions(), ("eventTime",), ("recipientAccountId",), None, "UTC")


def _assert_reads_alike(lines: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    texts = pl.Series(lines)
    fast = parse_cloudtrail(texts, ReadOptions())
    slow = _per_record(texts, monkeypatch)
    assert fast.columns == slow.columns
    assert_frame_equal(fast, slow, check_exact=True)


ODD: dict[str, str] = {
    "an escaped quote": _dump({**EVENT, "userAgent": 'aws-cli/"2'}),
    "a unicode escape": _dump(EVENT).replace("sato", "\\u00e9sato", 1),
    "spaces": _dump(EVENT).replace('":"', '": "', 1),
    "keys in another order": _dump(dict(reversed(list(EVENT.items())))),
    "one more key": _dump({**EVENT, "errorCode": "AccessDenied"}),
    "a key missing": _dump({k: v for k, v in EVENT.items() if k != "eventSource"}),
    "null for a string": _dump({**EVENT, "eventSource": None}),
    "a number for a string": _dump({**EVENT, "eventSource": 5}),
    "a float": _dump({**EVENT, "bytes": 1.5}),
    "an object for null": _dump({**EVENT, "responseElements": {"x": "y"}}),
    "an empty object": _dump({**EVENT, "responseElements": {}}),
    "a list": _dump({**EVENT, "resources": [{"ARN": "arn:x"}, "s", 1]}),
    "a raw tab": _dump(EVENT).replace("sato", "sa\tto", 1),
    "a raw control character": _dump(EVENT).replace("sato", "sa\x01to", 1),
    "a key given twice": _dump(EVENT).replace('{"eventVersion":"1.08"', '{"eventVersion":"1.08","eventVersion":"2"'),
    "quotes and colons in a value": _dump({**EVENT, "eventSource": 'a":"b'}),
    "a key ending with a colon": _dump({**EVENT, "a:": "v"}),
    "an empty string": _dump({**EVENT, "eventSource": ""}),
    "non-ASCII": _dump({**EVENT, "eventSource": "ログ\u2028é"}),
    "a name reached two ways": _dump({**EVENT, "userIdentity.type": "flat"}),
    "not an event": _dump({"foo": "bar"}),
    "not an object": "[1, 2]",
    "not JSON": _dump(EVENT)[:-3],
    "a space after": _dump(EVENT) + " ",
    "a big integer": _dump(EVENT)[:-1] + ',"n":18446744073709551616}',
    "a float with an exponent": _dump(EVENT)[:-1] + ',"f":1e-07}',
    "a field named _time": _dump({**EVENT, "_time": "x", "_host": "h"}),
    "no eventTime": _dump({k: v for k, v in EVENT.items() if k != "eventTime"}),
}


def test_a_batch_of_two_kinds_is_read_by_their_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line for pair in zip(_events(30), _events(30, LOGIN), strict=True) for line in pair]
    assert template_fields(pl.Series(lines), _is_event) is not None
    _assert_reads_alike(lines, monkeypatch)
    frame = parse_cloudtrail(pl.Series(lines), ReadOptions())
    assert frame["responseElements.ConsoleLogin"].to_list()[:2] == [None, "Failure-0"]
    assert frame["readOnly"].to_list()[:2] == ["true", None]
    assert frame["responseElements"].null_count() == len(lines)


@pytest.mark.parametrize("case", list(ODD))
def test_an_odd_record_among_the_others_reads_as_the_per_record_path_reads_it(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assert_reads_alike([*_events(5), ODD[case], *_events(5)], monkeypatch)
    _assert_reads_alike([ODD[case], *_events(5), ODD[case]], monkeypatch)


@pytest.mark.parametrize("case", ["keys in another order", "one more key", "a key missing", "null for a string",
                                  "an empty object", "a list", "non-ASCII", "a key ending with a colon"])
def test_an_odd_record_that_orjson_writes_alike_gets_a_template_of_its_own(case: str) -> None:
    frame = template_fields(pl.Series([*_events(5), ODD[case], *_events(5)]), _is_event)
    assert frame is not None and frame.height == 11


DECLINED = ["an escaped quote", "quotes and colons in a value", "spaces", "a raw tab", "a raw control character",
            "a key given twice", "a name reached two ways", "not an event", "not JSON", "a big integer",
            "a float with an exponent", "a space after"]


@pytest.mark.parametrize("case", DECLINED)
def test_a_batch_holding_a_record_no_template_reads_is_declined(case: str) -> None:
    assert template_fields(pl.Series([*_events(5), ODD[case], *_events(5)]), _is_event) is None


def test_a_batch_of_more_kinds_than_templates_is_declined() -> None:
    kinds = [{**LOGIN, f"k{i}": "v"} for i in range(json_templates.TEMPLATES + 1)]
    assert template_fields(pl.Series([_dump(kind) for kind in kinds]), _is_event) is None
    assert template_fields(pl.Series([_dump(kind) for kind in kinds[:-1]]), _is_event) is not None


def test_a_template_names_its_columns_as_flatten_does() -> None:
    template = template_of(_dump(LOGIN), _is_event)
    assert template is not None
    assert [name for name, _ in template.columns] == [
        "eventVersion", "eventName", "eventTime", "responseElements.ConsoleLogin", "additionalEventData.MFAUsed"]
    assert [source for _, source in template.columns] == [0, 1, 2, 3, 4]
    assert template.texts[0] == '{"eventVersion":"' and template.texts[-1] == '"}}'
    constants = template_of(_dump({"eventName": "x", "n": 5, "ok": False, "e": {}, "l": ["a", 1]}))
    assert constants is not None and constants.columns == (
        ("eventName", 0), ("n", "5"), ("ok", "false"), ("e", "{}"), ("l", '["a",1]'))


def test_random_batches_of_few_kinds_read_as_the_per_record_path(monkeypatch: pytest.MonkeyPatch) -> None:
    r = random.Random(9)
    keys = ["eventName", "a", "b.c", "userIdentity", "ユーザー"]

    def value(depth: int = 0) -> Any:
        roll = r.random()
        if roll < 0.45:
            return r.choice(["", "v", "a:b", "é", "1.0", "true", "a,b", "{x}", "[y]", " s "])
        if roll < 0.6:
            return r.choice([None, True, False, 0, -3, 2**40, 1.5, 0.1, [], ["a"], [1, "b"], [{"k": "v"}]])
        if roll < 0.8 and depth < 2:
            return {r.choice(keys): value(depth + 1) for _ in range(r.randint(0, 3))}
        return f"w{r.randint(0, 9)}"

    taken = 0
    for _ in range(40):
        kinds = [{"eventVersion": "1", **{r.choice(keys): value() for _ in range(r.randint(0, 5))}}
                 for _ in range(r.randint(1, 10))]
        lines = [_dump(r.choice(kinds)).replace('"w', '"W' if r.random() < 0.5 else '"w') for _ in range(50)]
        taken += template_fields(pl.Series(lines), _is_event) is not None
        _assert_reads_alike(lines, monkeypatch)
    assert taken > 10


def test_records_files_read_alike_through_the_whole_read_path(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``{"Records": [...]}`` file (its records written again compact) and JSON Lines, read whole."""
    records = [json.loads(line) for line in _events(40) + _events(10, LOGIN)]
    (tmp_path / "ct.json").write_text(json.dumps({"Records": records}, indent=2), encoding="utf-8")
    (tmp_path / "ct.jsonl").write_text("\n".join([*_events(40), ODD["not JSON"], *_events(3, LOGIN)]) + "\n",
                                       encoding="utf-8")
    spec = cloudtrail.SPECS[0]
    for name in ("ct.json", "ct.jsonl"):
        fast = list(spec.read(tmp_path / name, ReadOptions()))
        with monkeypatch.context() as patch:
            patch.setattr(cloudtrail, "template_fields", lambda *args, **kwargs: None)
            patch.setattr(batch, "_fast_json_fields", lambda *args, **kwargs: None)
            slow = list(spec.read(tmp_path / name, ReadOptions()))
        assert len(fast) == len(slow)
        for one, other in zip(fast, slow, strict=True):
            assert_frame_equal(one.frame, other.frame, check_exact=True)
            assert one.problems == other.problems


def test_values_holding_colons_commas_and_braces_are_read_by_their_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """A template's values are cut at its keys' ``":"``: a value holding ``:``, ``,``, ``{`` or ``}`` (never a
    quote, which JSON escapes) stays whole, and a record with a list of objects (``":"`` inside a list) is
    read by its template too."""
    odd = ["a:b", ":", "x,y:z", "{}", "}", ":,", "ログ:"]
    lines = [_dump({**EVENT, "eventSource": value, "userIdentity": {"type": value, "arn": "a", "userName": "u"}})
             for value in odd]
    lines += [_dump({**EVENT, "resources": [{"ARN": "arn:x"}]}), _dump({**EVENT, "resources": [{"ARN": "arn:y"}]})]
    frame = template_fields(pl.Series(lines), _is_event)
    assert frame is not None
    assert frame["eventSource"].to_list()[: len(odd)] == odd
    assert frame["userIdentity.type"].to_list()[: len(odd)] == odd
    _assert_reads_alike(lines, monkeypatch)
