"""Evaluate rule plans over one batch: each field dictionary-encoded once, each test run once on the
distinct values only, then spread to rows; rules combine the shared results with numpy.

A test's answer per distinct value is computed once per batch and read by every rule group's rows; a
column null in most rows is encoded on its non-null rows only, and its rows' codes are made only if
some test of it holds somewhere; tests the rule screen found impossible (a literal they need occurs
nowhere) answer at once. The tests of an OR on one field (a rule's list of values) are joined on
the distinct values, so the rows are filled once per field, not once per test. The columns routing
encoded already are not encoded again; regular-expression answers per value are kept across batches
(``answer_memo``); a field reference compares each distinct pair of values once. A result of ``None``
stands for "false on every row": most tests match nothing in most batches, so rules short-circuit
without touching arrays.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Collection, Container, Iterable
from dataclasses import replace
from typing import Any

import ahocorasick
import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from mamori.detect.sigma import arrow_kernels as kernels
from mamori.detect.sigma.answer_memo import AnswerMemo, SeenBudget
from mamori.detect.sigma.keyword_scan import raw_holding
from mamori.detect.sigma.plan import (
    ANY,
    CIDR,
    CONTAINS,
    ENDS,
    EQ,
    EXISTS,
    FIELDREF,
    GLOB,
    NULL,
    NUMBER,
    REGEX,
    STARTS,
    TIMEPART,
    PAnd,
    PAtLeast,
    PConst,
    Plan,
    PNot,
    POr,
    PTest,
    Test,
)
from mamori.detect.sigma.regex_dialect import polars_pattern
from mamori.detect.sigma.required_literal import test_literal
from mamori.events.frame import arrow_series, valid_mask

Bits = np.ndarray | None  # None: false everywhere


class BatchEvaluator:
    """Memoised test results over one prepared batch (a Polars DataFrame of string columns)."""

    def __init__(
        self,
        frame: pl.DataFrame,
        keyword_columns: list[str] | None = None,
        literals: LiteralBank | dict[tuple[str | None, bool], list[str]] | None = None,
        raw_prefilter: bool = True,
        answers: AnswerMemo | None = None,
        encoded: dict[str, tuple[pa.Array, np.ndarray]] | None = None,
    ) -> None:
        self.frame = frame
        self._answers = answers if answers is not None else AnswerMemo()  # (regex answers per value)
        self._encoded = encoded or {}  # text columns encoded already: distinct values, rows' codes
        self.rows = frame.height
        self._distinct: dict[tuple[str, bool], pa.Array | None] = {}  # (root only; ``_values``)
        self._row_codes: dict[str, np.ndarray] = {}  # (``_codes``)
        self._pending_codes: dict[str, tuple[Any, Any]] = {}  # non-null rows and their codes (``_sparse_codes``)
        self._lower_remap: dict[str, np.ndarray] = {}
        self._memo: dict[Test, Bits] = {}
        self._tables: dict[Test, np.ndarray | None] = {}  # per distinct value (whole batch; ``_value_table``)
        self._literals = literals if isinstance(literals, LiteralBank) else LiteralBank(literals or {})
        self._literal_index: dict[tuple[str, bool], LiteralIndex] = {}
        self._may_memo: dict[Test, bool] = {}
        self._never: set[int] = set()  # (shared with subsets; ``rule_out``)
        self._keyword_columns = keyword_columns if keyword_columns is not None else [
            c for c, t in frame.schema.items() if t == pl.Utf8 and not c.startswith("_")]
        self._raw_prefilter = raw_prefilter and "_raw" in frame.columns
        self._keyword_view: tuple[np.ndarray, BatchEvaluator] | None = None
        self._keyword_needles: list[str] | None = None
        self._raw_hits: dict[tuple[str, ...], np.ndarray] = {}
        self._ipv4: dict[int, tuple[pa.Array, np.ndarray, np.ndarray]] = {}
        self._time_parts: dict[int, tuple[pa.Array, pl.DataFrame]] = {}  # (``_time_part_bits``)
        self._pylists: dict[int, tuple[pa.Array, list[str | None]]] = {}
        self._columns = set(frame.columns)
        self._parent: BatchEvaluator | None = None
        self._index: np.ndarray | None = None
        self._root_place: np.ndarray | None = None  # (``_place_of_root_row``)

    def subset(self, index: np.ndarray, keyword_needles: list[str] | None = None) -> BatchEvaluator:
        """An evaluator over some rows only (a rule group's), sharing this one's column encodings and
        literal indexes: each test then costs what those rows cost, not the whole batch.
        ``keyword_needles``: the keyword literals of the group's rules, which alone pick the raw
        records worth searching for its keyword tests (default: every rule's)."""
        child = BatchEvaluator.__new__(BatchEvaluator)
        child.__dict__.update(self.__dict__)
        child._parent = self
        child._index = index
        child.rows = len(index)
        child._row_codes = {}
        child._root_place = None
        child._memo = {}
        child._keyword_view = None
        child._keyword_needles = keyword_needles
        child.frame = None  # type: ignore[assignment]  # made on demand (field references only)
        return child

    def _frame(self) -> pl.DataFrame:
        if self.frame is None:
            assert self._parent is not None and self._index is not None
            self.frame = self._parent._frame()[self._index]
        return self.frame

    # --- columns ------------------------------------------------------------------------------

    def _values(self, field: str, lower: bool) -> pa.Array | None:
        """The whole batch's distinct values of a field, null left out (None: absent or null everywhere);
        a per-value answer table has one slot more, ``len(values)``, for null. Lower-cased, the rows'
        codes stay those of the original values (``_lower_remap`` maps them to the lower-cased ones,
        and null to the last slot): a test's few distinct answers are mapped, not every row's code."""
        key = (field, lower)
        if key in self._distinct:
            return self._distinct[key]
        if self._parent is not None:
            return self._parent._values(field, lower)
        if (field, False) not in self._distinct:
            self._distinct[(field, False)] = self._encode_column(field)
        values = self._distinct[(field, False)]
        if not lower or values is None:
            return values
        # lower-casing can merge distinct values: encode again so every lower-cased value is unique
        relowered = kernels.dictionary_encode(kernels.utf8_lower(values))
        lowered_values = relowered.dictionary
        remap = np.append(kernels.codes_or(relowered.indices, len(lowered_values)), len(lowered_values))
        self._lower_remap[field] = remap
        self._distinct[key] = lowered_values
        return lowered_values

    def _encode_column(self, field: str) -> pa.Array | None:
        """Dictionary-encode one column of the batch: its distinct values now, the rows' codes kept
        for ``_codes`` (most screened fields never need them: no test of theirs holds anywhere).
        A column null in most rows (a field of a few event types) encodes only its non-null rows:
        walking the null rows is what costs there."""
        if field not in self._columns:
            return None
        known = self._encoded.get(field)
        if known is not None:  # (routing encoded it: the same values and codes, null left out)
            distinct, codes = known
            if not len(distinct):
                return None
            values = kernels.to_large_string(distinct)
            self._row_codes[field] = codes
            return values
        series = self._frame().get_column(field)  # (in chunks or not: Arrow gets it in one)
        if series.dtype != pl.Utf8:
            series = series.cast(pl.Utf8)
        nulls = series.null_count()
        if nulls == self.rows:
            return None
        array = series.to_arrow(compat_level=pl.CompatLevel.newest())
        compact = kernels.non_null_views(array) if nulls * 2 > self.rows else None
        if compact is not None:  # (the non-null values gathered with numpy, their rows kept for ``_codes``)
            positions: pa.Array | np.ndarray | None = compact[1]
            dictionary = kernels.dictionary_encode(compact[0])
        elif nulls * 2 > self.rows and not isinstance(array, pa.ChunkedArray):
            positions = array  # (which rows: read off its validity bitmap if the codes are wanted)
            dictionary = kernels.dictionary_encode(series.drop_nulls().to_arrow(compat_level=pl.CompatLevel.newest()))
        else:
            positions = None
            dictionary = kernels.dictionary_encode(array)
        if isinstance(dictionary, pa.ChunkedArray):
            dictionary = dictionary.combine_chunks()
        # Polars' own string views go to Arrow without a copy (half the cost of large strings); the
        # distinct values, few, are then cast for the kernels that want plain strings
        values = kernels.to_large_string(dictionary.dictionary)
        if positions is not None:  # most screened fields never need their rows' codes: made on demand
            self._pending_codes[field] = (positions, dictionary.indices)
        else:
            self._row_codes[field] = kernels.codes_or(dictionary.indices, len(values))  # null: ``len(values)``
        return values

    def _codes(self, field: str) -> np.ndarray:
        """Each row's code into the field's original distinct values (``len(values)``: null); the field's
        ``_values`` come first. A subset reads its rows' codes off the batch's; a column encoded on its
        non-null rows only spreads just those (the batch's rows are never all filled for a subset)."""
        codes = self._row_codes.get(field)
        if codes is not None:
            return codes
        root = self._root()
        values = root._distinct[(field, False)]
        assert values is not None
        pending = root._pending_codes.get(field)
        if pending is None:
            assert self._parent is not None and self._index is not None
            codes = np.take(self._parent._codes(field), self._index)
        elif self._parent is None:
            positions, present_codes = root._sparse_codes(field)
            del root._pending_codes[field]
            codes = np.full(self.rows, len(values), dtype=np.intp)
            codes[positions] = present_codes
        else:  # the non-null rows that are this subset's rows, placed by ``_place_of_root_row``
            positions, present_codes = root._sparse_codes(field)
            at = np.take(self._place_of_root_row(), positions)
            inside = at >= 0
            codes = np.full(self.rows, len(values), dtype=np.intp)
            codes[at[inside]] = present_codes[inside]
        self._row_codes[field] = codes
        return codes

    def _place_of_root_row(self) -> np.ndarray:
        """For each row of the whole batch, its position among this subset's rows (-1: not one of
        them); made once per subset, then each mostly-null column's non-null rows find their place
        in one gather (a binary search per column cost more)."""
        if self._root_place is None:
            rows = self._rows_in_root()
            assert rows is not None
            place = np.full(self._root().rows, -1, dtype=np.int32)
            place[rows] = np.arange(len(rows), dtype=np.int32)
            self._root_place = place
        return self._root_place

    def _sparse_codes(self, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(non-null rows, their codes) of a column encoded on its non-null rows only."""
        column, indices = self._pending_codes[field]
        if isinstance(indices, pa.Array):  # first need: the codes as numpy (the rows, if not known, too)
            values = self._distinct[(field, False)]
            assert values is not None
            if isinstance(column, pa.Array):  # (read off the validity bitmap)
                column = np.flatnonzero(valid_mask(column))
            indices = kernels.codes_or(indices, len(values))
            self._pending_codes[field] = (column, indices)
        return column, indices

    # --- tests --------------------------------------------------------------------------------

    def rule_out(self, test_ids: Iterable[int]) -> None:
        """Tests known to hold on no row of the batch (a literal they need occurs nowhere), by ``id``
        of the very test objects (kept alive by the caller: the rules' plans): ``test`` answers them at
        once, in this evaluator and the rule groups' subsets alike. (An ``id`` look-up costs a fraction
        of hashing a test.)"""
        self._never.update(test_ids)

    def test(self, test: Test) -> Bits:
        """Rows where one primitive test holds (memoised)."""
        if id(test) in self._never:
            return None
        if test in self._memo:
            return self._memo[test]
        result = self._run(test)
        if result is not None and not result.any():
            result = None
        self._memo[test] = result
        return result

    def _run(self, test: Test) -> Bits:
        if test.field is None:
            return self._keyword(test)
        if test.kind == FIELDREF:
            return self._fieldref(test)
        table = self._root()._value_table(test)
        if table is _ABSENT:  # the field is absent (or null) everywhere
            if test.kind == NULL or (test.kind == EXISTS and not test.arg):
                return np.ones(self.rows, dtype=bool)
            return None
        if table is None:
            return None
        rows: np.ndarray = np.take(table, self._codes(test.field))  # (twice as fast as table[codes])
        return rows

    def _value_table(self, test: Test) -> np.ndarray | None:
        """A test's answer for each of the whole batch's distinct original values, then null (at
        ``len(values)``): what any row's code reads (None: no value passes; ``_ABSENT``: the field
        is empty in the whole batch). Memoised: every rule group's rows read the same table."""
        if test in self._tables:
            return self._tables[test]
        table = self._tables[test] = self._new_value_table(test)
        return table

    def _new_value_table(self, test: Test) -> np.ndarray | None:
        field = test.field
        assert field is not None
        lower = not test.cased and test.kind in {EQ, CONTAINS, STARTS, ENDS, GLOB}
        values = self._values(field, lower=lower)
        if values is None:
            return _ABSENT
        if test.kind in {EQ, CONTAINS, STARTS, ENDS}:
            on_values, on_null = self._literal_index_for(field, test, values).bits(test), False
        elif test.kind in {REGEX, GLOB} and (required := test_literal(test.kind, test.arg)):
            on_values, on_null = self._expression_bits(test, field, values, required), False
        else:
            on_values, on_null = self._on_values(test, values)
        if on_values is None and not on_null:
            return None
        table = np.zeros(len(values) + 1, dtype=bool)
        if on_values is not None:
            table[: len(values)] = on_values
        table[len(values)] = on_null
        if not table.any():
            return None
        if lower:  # answers per lower-cased value -> per original value, which the codes number
            table = np.take(table, self._lower_remap[field])
        return table

    def _expression_bits(self, test: Test, field: str, values: pa.Array, required: str) -> np.ndarray | None:
        """A regular-expression or wildcard test run only on the distinct values holding its required
        text (found in the lower-cased values' literal index)."""
        candidates = self._required_candidates(field, required, values)
        if not len(candidates):
            return None
        if len(candidates) == len(values):
            return self._on_values(test, values)[0]
        passed = self._on_values(test, kernels.take(values, candidates))[0]
        if passed is None or not passed.any():
            return None
        out = np.zeros(len(values), dtype=bool)
        out[candidates[passed]] = True
        return out

    def _required_candidates(self, field: str, required: str, values: pa.Array) -> np.ndarray:
        """Positions in ``values`` (the field's original or lower-cased distinct values) of the values
        whose lower-cased text holds ``required``."""
        if self._parent is not None:
            return self._parent._required_candidates(field, required, values)
        lowered = self._values(field, lower=True)
        if lowered is None:
            return _NO_ROWS
        index = self._literal_index_for(field, Test(field, CONTAINS, required, False), lowered)
        holding = index.positions(required)
        if values is lowered or not len(holding):
            return holding
        remap = self._lower_remap[field]  # original distinct value -> lower-cased distinct value
        wanted = np.zeros(len(lowered) + 1, dtype=bool)
        wanted[holding] = True
        return np.flatnonzero(wanted[remap[: len(values)]])

    def _literal_index_for(self, field: str, test: Test, values: pa.Array) -> LiteralIndex:
        if self._parent is not None:
            return self._parent._literal_index_for(field, test, values)
        key = (field, test.cased)
        index = self._literal_index.get(key)
        if index is None:
            matcher = self._literals.matcher(field, test.cased, keywords=not self._raw_prefilter)
            index = self._literal_index[key] = LiteralIndex(values, matcher)
        return index

    def _keyword(self, test: Test) -> Bits:
        """A keyword (field-less) test holds where the event's text holds it: the raw record (as written,
        or as JSON spells it), else any text field. The rows that can hold are first found with one
        case-insensitive multi-pattern pass over the raw records for every keyword of the rules."""
        if self._raw_prefilter:
            index, view = self._keyword_rows()
            if not len(index):
                return None
            bits = view.test(replace(test, field="_raw"))
            if test.kind == CONTAINS:
                escaped = orjson.dumps(test.arg).decode()[1:-1]
                if escaped != test.arg:
                    other = view.test(replace(test, field="_raw", arg=escaped))
                    bits = other if bits is None else (bits if other is None else bits | other)
            if bits is None:
                return None
            out = np.zeros(self.rows, dtype=bool)
            out[index] = bits
            return out
        result: Bits = None
        for column in self._keyword_columns:
            bits = self.test(replace(test, field=column))
            if bits is not None:
                result = bits if result is None else result | bits
        return result

    def _root(self) -> BatchEvaluator:
        return self if self._parent is None else self._parent._root()

    def _rows_in_root(self) -> np.ndarray | None:
        """This evaluator's rows as positions in the whole batch (None: it is the whole batch)."""
        if self._parent is None:
            return None
        assert self._index is not None
        above = self._parent._rows_in_root()
        return self._index if above is None else above[self._index]

    def _raw_holding(self, needles: tuple[str, ...]) -> np.ndarray:
        """Over the whole batch: which raw records hold one of ``needles`` (any case); one pass per
        distinct needle set, shared by every rule group asking for it."""
        root = self._root()
        known = root._raw_hits.get(needles)
        if known is None:
            known = root._raw_hits[needles] = raw_holding(root.frame.get_column("_raw"), needles)
        return known

    def _keyword_rows(self) -> tuple[np.ndarray, BatchEvaluator]:
        if self._keyword_view is None:
            needles = self._keyword_needles if self._keyword_needles is not None else self._literals.keyword_needles()
            rows = self._rows_in_root()
            raw = self._root().frame.get_column("_raw")
            if not needles or "" in needles:
                index = np.arange(self.rows)
            elif rows is None or len(rows) * 2 > len(raw):  # most of the batch: one shared pass over it all
                holding = self._raw_holding(tuple(needles))
                index = np.flatnonzero(holding if rows is None else holding[rows])
            else:  # a few rows (one channel's): search just those
                index = np.flatnonzero(raw_holding(raw.gather(rows), tuple(needles)))
            raws = pl.DataFrame({"_raw": raw.gather(index if rows is None else rows[index])})
            view = BatchEvaluator(raws, [], self._literals.keyword_bank(needles), raw_prefilter=False)
            self._keyword_view = (index, view)
        return self._keyword_view

    def _on_values(self, test: Test, values: pa.Array) -> tuple[np.ndarray | None, bool]:
        """Evaluate a test on the distinct values; also say whether it holds for null."""
        kind, arg = test.kind, test.arg
        if kind == EQ:
            return _arrow_bits(kernels.is_in(values, value_set=pa.array(sorted(arg), type=values.type))), False
        if kind == CONTAINS:
            return _arrow_bits(kernels.match_substring(values, arg)), False
        if kind == STARTS:
            return _arrow_bits(kernels.starts_with(values, arg)), False
        if kind == ENDS:
            return _arrow_bits(kernels.ends_with(values, arg)), False
        if kind == GLOB:
            glob = str(arg)
            return self._answers.bits((glob, 0), values, lambda some: _regex_bits(some, glob, 0),
                                      self._texts(values)), False
        if kind == REGEX:
            pattern, flags = arg
            prefix = f"(?{flags})" if flags else ""
            py_flags = (re.I if "i" in flags else 0) | (re.M if "m" in flags else 0) | (re.S if "s" in flags else 0)
            return self._answers.bits((prefix + pattern, py_flags), values,
                                      lambda some: _regex_bits(some, prefix + pattern, py_flags, pattern),
                                      self._texts(values)), False
        if kind == ANY:
            return np.ones(len(values), dtype=bool), False
        if kind == EXISTS:
            return np.full(len(values), bool(arg)), not arg
        if kind == NULL:
            return _arrow_bits(kernels.equal(values, "")), True
        if kind == CIDR:
            return self._cidr_bits(values, arg), False
        if kind == NUMBER:
            return _python_bits(values, _number_check(*arg)), False
        if kind == TIMEPART:
            return self._time_part_bits(values, *arg), False
        raise ValueError(f"unknown test kind {kind}")

    def _texts(self, values: pa.Array) -> list[str | None]:
        """Distinct values as Python strings, made once per array and batch: every regular expression
        on a field looks its values up in the answers remembered across batches."""
        root = self._root()
        known = root._pylists.get(id(values))
        if known is None or known[0] is not values:
            known = root._pylists[id(values)] = (values, values.to_pylist())
        return known[1]

    def _cidr_bits(self, values: pa.Array, networks: tuple[str, ...]) -> np.ndarray:
        """Addresses inside any network: the distinct values read as IPv4 numbers once per batch and
        field (rules test dozens of networks on the same addresses), the rest (IPv6) one by one."""
        root = self._root()
        known = root._ipv4.get(id(values))
        if known is None or known[0] is not values:
            known = root._ipv4[id(values)] = (values, *_ipv4_numbers(values))
        _, v4, valid = known
        out = np.zeros(len(values), dtype=bool)
        others: list[str] = []
        for text in networks:
            net = ipaddress.ip_network(text, strict=False)
            if net.version == 4:
                out |= valid & ((v4 & int(net.netmask)) == int(net.network_address))
            else:
                others.append(text)
        if others:
            rest = np.flatnonzero(~valid)
            if len(rest):
                check = _cidr_check(tuple(others))
                texts = kernels.take(values, rest).to_pylist()
                out[rest] = [t is not None and check(t) for t in texts]
        return out

    def _time_part_bits(self, values: pa.Array, part: str, op: str, number: int) -> np.ndarray:
        """Values whose date-time has ``part`` (minute ... year) compared with ``number`` as ``op``
        says: the distinct values read as date-times once per batch and field (``time_parts``), then
        one comparison of a column; a value that is no date-time matches nothing."""
        root = self._root()
        known = root._time_parts.get(id(values))
        if known is None or known[0] is not values:
            known = root._time_parts[id(values)] = (values, time_parts(values))
        column = known[1].get_column(part)
        compare = {"eq": column == number, "gt": column > number, "gte": column >= number,
                   "lt": column < number, "lte": column <= number}[op]
        bits: np.ndarray = compare.fill_null(False).to_numpy()
        return bits

    def _fieldref(self, test: Test) -> Bits:
        """A field compared with another field of the same event. Text fields are compared once per
        distinct pair of values the rows hold (a few hundred where there are thousands of rows),
        through the fields' codes; other column types row by row."""
        other = test.arg[0]
        if test.field not in self._columns or other not in self._columns:
            return None
        # only the rows where both fields have a value (null compares false): few, for most pairs
        mine_values, their_values = self._values(test.field, lower=False), self._values(other, lower=False)
        if mine_values is None or their_values is None:  # a field null everywhere
            return None
        mine_codes, their_codes = self._codes(test.field), self._codes(other)
        where = np.flatnonzero((mine_codes < len(mine_values)) & (their_codes < len(their_values)))
        if not len(where):
            return None
        schema = self._root().frame.schema
        if schema[test.field] == pl.Utf8 and schema[other] == pl.Utf8:
            result = _fieldref_on_pairs(test, mine_values, mine_codes[where], their_values, their_codes[where])
        else:
            above = self._rows_in_root()
            rows = where if above is None else above[where]
            both = self._root().frame.select([test.field, other])[rows]  # only the two columns, then those rows
            result = both.select(_fieldref_expr(test, test.field, other)).to_series().to_numpy()
        out = np.zeros(self.rows, dtype=bool)
        out[where] = result
        return out

    # --- pre-filter: can a plan match at all? ---------------------------------------------------

    def may_match(self, plan: Plan) -> bool:
        """False when a plan cannot match this batch: a literal every match needs occurs in no value
        of its field (one multi-pattern pass per field answers this for all rules at once)."""
        if isinstance(plan, PTest):
            return self._may(plan.test)
        if isinstance(plan, PAnd):
            return all(self.may_match(p) for p in plan.parts)
        if isinstance(plan, POr):
            return any(self.may_match(p) for p in plan.parts)
        if isinstance(plan, PAtLeast):
            return sum(1 for p in plan.parts if self.may_match(p)) >= plan.count
        if isinstance(plan, PConst):
            return plan.value
        return True  # PNot: absence proves nothing

    def _or_on_values(self, test: Test, on_values: dict[str, np.ndarray]) -> bool:
        """For one test of an OR: fold its per-value answers into ``on_values`` (its field's table),
        so that an OR of many tests of one field (``Image|endswith`` with a list) fills the rows once,
        not once per test. False when the test must go the row way (no field, a field reference,
        an answer already known by rows, a field empty in the batch)."""
        if test.field is None or test.kind == FIELDREF or test in self._memo:
            return False
        if id(test) in self._never:
            return True  # (holds nowhere)
        table = self._root()._value_table(test)
        if table is _ABSENT:
            return False
        if table is not None:
            folded = on_values.get(test.field)
            on_values[test.field] = table if folded is None else folded | table
        return True

    def _may(self, test: Test) -> bool:
        known = self._may_memo.get(test)
        if known is not None:
            return known
        if id(test) in self._never:
            return False
        answer = True
        if test.field is None:
            answer = True  # decided by the raw-record pre-filter when the test runs
        elif test.kind in {EQ, CONTAINS, STARTS, ENDS}:
            field = test.field
            values = self._values(field, lower=not test.cased)
            if values is None:
                answer = False
            else:
                index = self._literal_index_for(field, test, values)
                answer = index.may_hold(test)
        elif test.kind in {REGEX, GLOB} and (required := test_literal(test.kind, test.arg)):
            lowered = self._values(test.field, lower=True)
            answer = lowered is not None and len(self._required_candidates(test.field, required, lowered)) > 0
        self._may_memo[test] = answer
        return answer

    def literals_found(self, field: str, cased: bool) -> tuple[Collection[str], Container[str]] | None:
        """The rule literals occurring in some value of ``field`` (lower-cased unless ``cased``) and the
        literals its index looks for; None when the field is empty in the whole batch."""
        values = self._values(field, lower=not cased)
        if values is None:
            return None
        index = self._literal_index_for(field, Test(field, CONTAINS, "", cased), values)
        return index.found, index.announced

    def values_present(self, field: str, cased: bool) -> Collection[str]:
        """The distinct values of ``field`` in the batch (lower-cased unless ``cased``)."""
        values = self._values(field, lower=not cased)
        if values is None:
            return {}
        return self._literal_index_for(field, Test(field, EQ, frozenset(), cased), values).position

    # --- plans --------------------------------------------------------------------------------

    def evaluate(self, plan: Plan) -> Bits:
        """Rows where a rule plan holds."""
        if isinstance(plan, PTest):
            return self.test(plan.test)
        if isinstance(plan, PAnd):
            result: Bits = None
            for i, part in enumerate(plan.parts):
                bits = self.evaluate(part)
                if bits is None:
                    return None
                result = bits if i == 0 else result & bits  # type: ignore[operator]
                if not result.any():  # type: ignore[union-attr]
                    return None
            return result
        if isinstance(plan, POr):
            result = None
            on_values: dict[str, np.ndarray] = {}  # (per field: the OR of its tests' value tables)
            for part in plan.parts:
                if isinstance(part, PTest) and self._or_on_values(part.test, on_values):
                    continue
                bits = self.evaluate(part)
                if bits is not None:
                    result = bits if result is None else result | bits
            for field, table in on_values.items():
                bits = np.take(table, self._codes(field))
                if bits.any():  # (a subset's rows may hold none of the values that pass)
                    result = bits if result is None else result | bits
            return result
        if isinstance(plan, PNot):
            bits = self.evaluate(plan.part)
            if bits is None:
                return np.ones(self.rows, dtype=bool) if self.rows else None
            inverted = ~bits
            return inverted if inverted.any() else None
        if isinstance(plan, PAtLeast):
            counts = np.zeros(self.rows, dtype=np.int32)
            for part in plan.parts:
                bits = self.evaluate(part)
                if bits is not None:
                    counts += bits
            hit = counts >= plan.count
            return hit if hit.any() else None
        if isinstance(plan, PConst):
            return np.ones(self.rows, dtype=bool) if plan.value and self.rows else None
        raise TypeError(f"unknown plan {plan!r}")


# an ISO 8601 date-time as written (``2024-05-01T03:04:05.123+09:00``, ``2024-05-01 03:04:05Z``, Polars'
# own ``2024-05-01 03:04:05.123456789+00:00`` for a Datetime column such as ``_time``, or a date alone);
# "/" between the date's numbers is read too
_DATE_TIME = r"^\s*(\d{4})[-/](\d{2})[-/](\d{2})(?:(?:T|\s+)(\d{2}):(\d{2}))?"
# OCSF's timestamps (``time``, ``start_time``): milliseconds since 1970, UTC (11 to 14 digits: the years
# 1973 to 5138, so a small number such as a count is never read as a time)
_EPOCH_MS = r"^\s*\d{11,14}\s*$"


def time_parts(values: pa.Array) -> pl.DataFrame:
    """Each value's minute, hour, day, ISO week, month and year (columns of those names; null where the
    value is no valid date-time, and minute and hour where it has no time). The parts are those written
    in the value: no time-zone conversion, as the Sigma modifiers appendix says of the time modifiers
    ("not designed to handle timezone or format conversions"), so ``03:00+09:00`` is hour 3; OCSF's
    millisecond timestamps are read in UTC."""
    texts = _utf8(values)
    groups = texts.str.extract_groups(_DATE_TIME).struct.unnest()
    numbers = groups.select(pl.all().cast(pl.Int32, strict=False))
    date = groups.select(pl.concat_str([pl.col("1"), pl.col("2"), pl.col("3")], separator="-")
                         .str.to_date("%Y-%m-%d", strict=False)).to_series()
    hour, minute = numbers.get_column("4"), numbers.get_column("5")
    written = date.is_not_null() & (hour.is_null() | ((hour <= 23) & (minute <= 59)))
    epoch = pl.Series(texts.str.contains(_EPOCH_MS).fill_null(False))
    moment = (texts.str.strip_chars().cast(pl.Int64, strict=False).cast(pl.Datetime("ms", "UTC"))
              .dt.replace_time_zone(None))
    frame = pl.DataFrame({"date": date, "hour": hour, "minute": minute, "written": written, "epoch": epoch,
                          "moment": moment})
    day = pl.when(pl.col("written")).then(pl.col("date")).when(pl.col("epoch")).then(pl.col("moment").dt.date())
    return frame.select(
        pl.when(pl.col("written")).then(pl.col("minute")).when(pl.col("epoch")).then(pl.col("moment").dt.minute())
        .cast(pl.Int64).alias("minute"),
        pl.when(pl.col("written")).then(pl.col("hour")).when(pl.col("epoch")).then(pl.col("moment").dt.hour())
        .cast(pl.Int64).alias("hour"),
        day.dt.day().cast(pl.Int64).alias("day"), day.dt.week().cast(pl.Int64).alias("week"),
        day.dt.month().cast(pl.Int64).alias("month"), day.dt.year().cast(pl.Int64).alias("year"))


def _fieldref_expr(test: Test, mine_name: str, their_name: str) -> pl.Expr:
    """The Polars expression of a field-reference test between two columns (null: false)."""
    _, mode = test.arg
    mine, theirs = pl.col(mine_name), pl.col(their_name)
    if not test.cased:
        mine, theirs = mine.str.to_lowercase(), theirs.str.to_lowercase()
    expr = {"contains": lambda: mine.str.contains(theirs, literal=True),
            "startswith": lambda: mine.str.starts_with(theirs),
            "endswith": lambda: mine.str.ends_with(theirs)}.get(mode, lambda: mine == theirs)()
    return expr.fill_null(False)


def _fieldref_on_pairs(test: Test, mine_values: pa.Array, mine_codes: np.ndarray, their_values: pa.Array,
                       their_codes: np.ndarray) -> np.ndarray:
    """A field-reference test on rows given by their codes into two fields' distinct values (both
    present): run once per distinct pair of codes, then spread to the rows."""
    pairs = mine_codes.astype(np.int64) * len(their_values) + their_codes
    distinct, inverse = np.unique(pairs, return_inverse=True)
    both = pl.DataFrame([arrow_series("a", kernels.take(mine_values, distinct // len(their_values))),
                         arrow_series("b", kernels.take(their_values, distinct % len(their_values)))])
    answers: np.ndarray = both.select(_fieldref_expr(test, "a", "b")).to_series().to_numpy()
    spread: np.ndarray = answers[inverse.reshape(-1)]
    return spread


def _arrow_bits(array: pa.Array) -> np.ndarray:
    bits: np.ndarray = kernels.true_mask(array)
    return bits


_PY_REGEX: dict[tuple[str, int], re.Pattern[str]] = {}


_COMPILES_SLOWLY: set[str] = set()  # patterns Arrow takes long on (compiling, every call): Polars runs them
_SLOW_ONCE: set[str] = set()  # patterns one Arrow call was slow on (a busy machine can make any call slow)
SLOW_ARROW_CALL = 0.002  # seconds; a Polars call costs about a tenth of this, its compiled patterns kept


def _regex_bits(values: pa.Array, pattern: str, py_flags: int, py_pattern: str | None = None) -> np.ndarray:
    """RE2 semantics through Arrow, which compiles the pattern on every call: cheap for most patterns,
    but some (long alternations, counted repeats) take milliseconds, every batch; those (slow on two
    calls running) move to Polars' regex engine, which keeps compiled patterns (``regex_dialect``
    says them in its syntax). Python ``re`` for what RE2 refuses (look-around, back-references)."""
    if pattern in _COMPILES_SLOWLY:
        bits = polars_regex_bits(values, pattern)
        if bits is not None:
            return bits
    started = time.perf_counter()
    try:
        bits = _arrow_bits(kernels.match_substring_regex(values, pattern))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        key = (py_pattern or pattern, py_flags)
        compiled = _PY_REGEX.get(key)
        if compiled is None:
            compiled = _PY_REGEX[key] = re.compile(key[0], py_flags)
        return _python_bits(values, lambda v: compiled.search(v) is not None)
    if time.perf_counter() - started <= SLOW_ARROW_CALL:
        _SLOW_ONCE.discard(pattern)
    elif pattern not in _SLOW_ONCE:
        _SLOW_ONCE.add(pattern)
    elif polars_pattern(pattern) is not None:
        _COMPILES_SLOWLY.add(pattern)
    return bits


def polars_regex_bits(values: pa.Array, pattern: str) -> np.ndarray | None:
    """Which values hold an RE2 pattern, by Polars (None: the pattern has no faithful Polars form)."""
    translated = polars_pattern(pattern)
    if translated is None:
        return None
    try:
        bits: np.ndarray = _utf8(values).str.contains(translated).fill_null(False).to_numpy()
    except pl.exceptions.ComputeError:  # a pattern Rust's regex refuses
        return None
    return bits


def _python_bits(values: pa.Array, check: Callable[[str], bool]) -> np.ndarray:
    return np.fromiter((v is not None and check(v) for v in values.to_pylist()), dtype=bool, count=len(values))


def _utf8(values: pa.Array) -> pl.Series:
    """Distinct values (Arrow strings) as a Polars text Series."""
    return arrow_series("v", values).cast(pl.Utf8)


def _ipv4_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Each value as an IPv4 number, and whether it is one (dotted quad, spaces allowed around).

    Plain dotted quads are read in one vectorised pass; only values with space at either end (rare)
    are read one by one."""
    texts = _utf8(values)
    quads = texts.str.extract_groups(_DOTTED_QUAD).struct.unnest()
    parts = [quads.get_column(c).cast(pl.Int64).fill_null(-1).to_numpy() for c in quads.columns]
    valid = np.ones(len(values), dtype=bool)
    numbers = np.zeros(len(values), dtype=np.int64)
    for part in parts:
        valid &= (part >= 0) & (part <= 255)
        numbers = (numbers << 8) | np.where(valid, part, 0)
    numbers[~valid] = -1
    spaced = texts.str.contains(_SPACE_AT_END).fill_null(False).to_numpy()
    for position in np.flatnonzero(spaced & ~valid).tolist():
        number = _ipv4_number(values[position].as_py())
        if number is not None:
            numbers[position], valid[position] = number, True
    return numbers, valid


_DOTTED_QUAD = r"^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$"
_SPACE_AT_END = r"^[\s\x1c-\x1f]|[\s\x1c-\x1f]$"  # what Python's str.strip() would remove, and more


def _ipv4_number(text: str) -> int | None:
    """A dotted quad (spaces allowed around) as a number, else None."""
    parts = text.strip().split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
        a, b, c, d = (int(p) for p in parts)
        if a <= 255 and b <= 255 and c <= 255 and d <= 255:
            return (a << 24) | (b << 16) | (c << 8) | d
    return None


def _cidr_check(networks: tuple[str, ...]) -> Callable[[str], bool]:
    nets = [ipaddress.ip_network(n, strict=False) for n in networks]

    def inside(text: str) -> bool:
        try:
            address = ipaddress.ip_address(text.strip().strip("[]").split("%")[0])
        except ValueError:
            return False
        return any(address.version == net.version and address in net for net in nets)

    return inside


def _number_check(op: str, number: float) -> Callable[[str], bool]:
    compare: dict[str, Callable[[float], bool]] = {
        "gt": lambda v: v > number, "gte": lambda v: v >= number,
        "lt": lambda v: v < number, "lte": lambda v: v <= number,
    }

    def check(text: str) -> bool:
        try:
            return compare[op](float(text.strip()))
        except ValueError:
            return False

    return check


_NO_ROWS = np.zeros(0, dtype=np.int64)
_ABSENT = np.zeros(0, dtype=bool)  # a value table's mark for a field empty in the whole batch


class LiteralMatcher:
    """Every literal the rules test on one field, in one Aho-Corasick automaton built once per rule set
    (building it is what costs: thousands of command-line fragments), then reused by every batch.

    The literals found in a value are remembered across batches (a stream meets the same images,
    channels and command lines again and again): a value seen before costs one look-up, not a walk
    over every match of every literal in it. The memory is bounded in characters, together with the
    other matchers of its rule set (``budget``); past that it starts over."""

    SEEN_LONGEST = 2_000  # longer values (raw records) are not remembered: rarely seen twice

    def __init__(self, literals: Iterable[str], budget: SeenBudget | None = None) -> None:
        self.literals = sorted({literal for literal in literals if literal})
        self.announced = frozenset(self.literals)
        self._automaton: Any = None
        self.budget = budget if budget is not None else SeenBudget()
        self._seen = self.budget.memory()

    def automaton(self) -> Any:
        """The Aho-Corasick automaton over the literals (built on first need)."""
        if self._automaton is None:
            automaton = ahocorasick.Automaton()
            for literal in self.literals:
                automaton.add_word(literal, literal)
            automaton.make_automaton()
            self._automaton = automaton
        return self._automaton

    def occurrences(self, values: pa.Array) -> dict[str, Any]:
        """For each literal that occurs in some value, the positions of the values holding it."""
        found: dict[str, Any] = {}
        if not self.literals:
            return found
        if len(self.literals) <= FEW_LITERALS and _long_values(values):
            return _occurrences_in_one_pass(values, self.literals)
        scan = self.automaton().iter
        seen = self._seen
        for position, value in enumerate(values.to_pylist()):
            if not value:
                continue
            literals = seen.get(value)
            if literals is None:
                literals = tuple(dict.fromkeys(literal for _, literal in scan(value)))  # each once, in order
                if len(value) <= self.SEEN_LONGEST:
                    self.budget.spend(len(value))  # (may forget what every matcher of the rule set remembered)
                    seen[value] = literals
            for literal in literals:
                held = found.get(literal)
                if held is None:
                    found[literal] = [position]
                else:  # (positions come in order, each value's literals once)
                    held.append(position)
        return found


FEW_LITERALS = 300  # below this, building an automaton per batch costs less than Python-side scanning
LONG_TEXT = 1_000_000  # characters: raw records hold many matches each, costly to walk in Python


def _long_values(values: pa.Array) -> bool:
    """Whether the values are long (then one Polars pass beats walking every match in Python)."""
    return kernels.total_length(values) > LONG_TEXT


def _occurrences_in_one_pass(values: pa.Array, literals: list[str]) -> dict[str, Any]:
    """Occurrences of a few literals (the keyword searches over raw records: long values, many
    repeats), found by Polars in one pass with an automaton built for this batch."""
    matches = pl.Series("v", values).str.extract_many(literals, overlapping=True)
    grouped = (
        pl.DataFrame({"i": np.arange(len(values)), "l": matches})
        .lazy()
        .explode("l")
        .drop_nulls("l")
        .group_by("l")
        .agg(pl.col("i").unique())
        .collect()
    )
    return dict(zip(grouped.get_column("l").to_list(), grouped.get_column("i").to_list(), strict=True))


class LiteralBank:
    """The literal matchers of a rule set, per (field, cased), made on first use and kept. Batches
    without raw records search keyword (field-less) literals in every field: their matchers hold the
    keyword literals too; batches with raw records search those in the raw records only, and their
    field matchers leave the keyword literals out (fewer matches to walk in every field)."""

    def __init__(self, literals: dict[tuple[str | None, bool], list[str]], budget: SeenBudget | None = None) -> None:
        self._literals = literals
        self.budget = budget if budget is not None else SeenBudget()  # what all its matchers remember, bounded
        self._matchers: dict[tuple[str, bool, bool], LiteralMatcher] = {}
        self._needles: list[str] | None = None
        self._keyword_banks: dict[tuple[str, ...], LiteralBank] = {}

    def build_all(self) -> None:
        """Build every field's automaton now, as batches with raw records use them (a tenth of a second
        for the SigmaHQ set)."""
        for field, cased in list(self._literals):
            if field is not None:
                self.matcher(field, cased, keywords=False).automaton()

    def matcher(self, field: str, cased: bool, keywords: bool = True) -> LiteralMatcher:
        """The matcher for the literals tested on ``field`` (plus the keyword literals, with ``keywords``)."""
        key = (field, cased, keywords)
        found = self._matchers.get(key)
        if found is None:
            wanted = self._literals.get((field, cased), [])
            if keywords:
                wanted = wanted + self._literals.get((None, cased), [])
            found = self._matchers[key] = LiteralMatcher(wanted, self.budget)
        return found

    def keyword_needles(self) -> list[str]:
        """Every keyword literal of every rule (see ``keyword_needles``)."""
        if self._needles is None:
            self._needles = keyword_needles(
                literal for (field, _), literals in self._literals.items() if field is None for literal in literals)
        return self._needles

    def keyword_bank(self, needles: list[str]) -> LiteralBank:
        """The bank keyword tests with these needles use on the raw records."""
        key = tuple(needles)
        bank = self._keyword_banks.get(key)
        if bank is None:
            bank = self._keyword_banks[key] = LiteralBank({("_raw", False): list(needles)}, self.budget)
        return bank


def keyword_needles(literals: Iterable[str]) -> list[str]:
    """Keyword literals as written and as JSON spells them (raw records are searched as stored);
    an empty one means "no pre-filter": some keyword test names no fixed text."""
    needles: set[str] = set()
    for literal in literals:
        needles.add(literal)
        needles.add(orjson.dumps(literal).decode()[1:-1])
    return sorted(needles)


class LiteralIndex:
    """Which of a field's distinct values contain which rule literals, from one multi-pattern pass
    (the field's prebuilt Aho-Corasick automaton). Substring tests then read the index; prefix,
    suffix and equality tests check only the values that contain the literal."""

    def __init__(self, values: pa.Array, matcher: LiteralMatcher) -> None:
        self.size = len(values)
        self._array = values
        self._values: list[str | None] | None = None
        self._position: dict[str, int] | None = None
        self._announced = matcher.announced
        self._by_literal: dict[str, Any] = matcher.occurrences(values) if self._announced and self.size else {}

    @property
    def found(self) -> dict[str, Any]:
        """The announced literals occurring in some value (with where, in the index's own form)."""
        return self._by_literal

    @property
    def announced(self) -> frozenset[str]:
        """Every literal this index looked for."""
        return self._announced

    @property
    def position(self) -> dict[str, int]:
        """Each distinct value's position."""
        if self._position is None:
            self._position = {v: i for i, v in enumerate(self.values) if v is not None}
        return self._position

    @property
    def values(self) -> list[str | None]:
        """The distinct values as Python strings (made on first need: prefix, suffix, equality)."""
        if self._values is None:
            self._values = self._array.to_pylist()
        return self._values

    def positions(self, literal: str) -> np.ndarray:
        """Positions of the distinct values holding ``literal`` (one the rules announced)."""
        if literal == "":
            return np.array([i for i, v in enumerate(self.values) if v is not None], dtype=np.int64)
        known = self._by_literal.get(literal)
        if known is not None:
            if not isinstance(known, np.ndarray):
                known = self._by_literal[literal] = np.asarray(known, dtype=np.int64)
            return known
        if literal in self._announced:
            return _NO_ROWS
        # a literal no rule announced (should not happen): fall back to a scan
        return np.array([i for i, v in enumerate(self.values) if v is not None and literal in v], dtype=np.int64)

    def may_hold(self, test: Test) -> bool:
        """Whether some value could pass a literal test (its literal occurs somewhere)."""
        if test.kind == EQ:
            position = self.position
            return any(v in position for v in test.arg)  # type: ignore[attr-defined]
        return len(self.positions(str(test.arg))) > 0

    def bits(self, test: Test) -> np.ndarray | None:
        """A test's result over the distinct values, or None when no value passes."""
        if test.kind == EQ:
            out = np.zeros(self.size, dtype=bool)
            position = self.position
            hits = [position[v] for v in test.arg if v in position]  # type: ignore[attr-defined]
            if not hits:
                return None
            out[hits] = True
            return out
        literal = str(test.arg)
        candidates = self.positions(literal)
        if not len(candidates):
            return None
        out = np.zeros(self.size, dtype=bool)
        if test.kind == CONTAINS:
            out[candidates] = True
            return out
        if len(candidates) > 24:  # many candidates: one vectorised check
            taken = kernels.take(self._array, candidates)
            check = kernels.starts_with if test.kind == STARTS else kernels.ends_with
            chosen = candidates[_arrow_bits(check(taken, literal))]
        else:
            values = self.values
            if test.kind == STARTS:
                chosen = [i for i in candidates if values[i].startswith(literal)]  # type: ignore[union-attr]
            else:
                chosen = [i for i in candidates if values[i].endswith(literal)]  # type: ignore[union-attr]
        if not len(chosen):
            return None
        out[chosen] = True
        return out
