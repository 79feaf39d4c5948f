"""Answers of costly per-value tests (rule regular expressions) remembered across batches.

A batch runs each regular expression once on the distinct values of its field; a stream meets the
same images, command lines and paths again and again, so most of those values were answered by an
earlier batch. Arrow compiles a pattern on every call (milliseconds for the long SigmaHQ
alternations), so looking the known values up and running the pattern on the new ones only (or
not at all) is what saves. The memory is bounded in characters; past that it starts over.

``SeenBudget`` is that bound, shared by every memory of per-value answers that counts in it (this
one, and the literal matchers of ``evaluate``, which remember the literals found per value).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pyarrow as pa

from mamori.detect.sigma import arrow_kernels as kernels


class SeenBudget:
    """The characters of values some memories of per-value answers keep, counted together: past the
    limit every one of them starts over. A stream of new values fills the memory of every field that
    has them (command lines, hashes, paths...), so a bound per field would bound nothing in total."""

    SEEN_CHARS = 4_000_000  # characters of remembered values, over every memory, at most

    def __init__(self, limit: int = SEEN_CHARS) -> None:
        self.limit = limit
        self.chars = 0
        self._memories: list[dict[Any, Any]] = []

    def memory(self) -> dict[Any, Any]:
        """A new memory (value -> its answer), counted in this budget."""
        memory: dict[Any, Any] = {}
        self._memories.append(memory)
        return memory

    def spend(self, chars: int) -> None:
        """Count values about to be remembered; past the limit, forget everything first."""
        self.chars += chars
        if self.chars > self.limit:
            for memory in self._memories:
                memory.clear()
            self.chars = chars


class AnswerMemo:
    """Which values passed which test (by a key naming the test), across batches."""

    SEEN_CHARS = SeenBudget.SEEN_CHARS  # characters of remembered values, over every test, at most
    SEEN_LONGEST = 2_000  # longer values (raw records) are not remembered: rarely seen twice

    def __init__(self, limit: int = SEEN_CHARS, longest: int = SEEN_LONGEST) -> None:
        self.budget = SeenBudget(limit)
        self.longest = longest
        self._answers: dict[Hashable, dict[str | None, bool]] = {}

    def bits(self, key: Hashable, values: pa.Array, compute: Callable[[pa.Array], np.ndarray],
             texts: list[str | None] | None = None) -> np.ndarray:
        """Whether each value passes the test ``key`` names: remembered answers where known,
        ``compute`` (the test run on an array of values) on the others only, which are then kept.
        ``texts``: the values as Python strings, if the caller has them (tests of one field share them)."""
        if texts is None:
            texts = values.to_pylist()
        known = self._answers.get(key)
        if known is None:
            known = self._answers[key] = self.budget.memory()
        out = np.zeros(len(texts), dtype=bool)
        unknown: list[int] = []
        for position, text in enumerate(texts):
            answer = known.get(text)
            if answer is None:
                unknown.append(position)
            elif answer:
                out[position] = True
        if not unknown:
            return out
        fresh = compute(values if len(unknown) == len(texts) else kernels.take(values, unknown))
        out[unknown] = fresh
        self._remember(key, known, [texts[i] for i in unknown], fresh)
        return out

    def _remember(self, key: Hashable, known: dict[str | None, bool], texts: list[str | None],
                  answers: np.ndarray) -> None:
        self.budget.spend(sum(len(text) for text in texts if text is not None and len(text) <= self.longest))
        for text, answer in zip(texts, answers.tolist(), strict=True):
            if text is None or len(text) <= self.longest:
                known[text] = answer
