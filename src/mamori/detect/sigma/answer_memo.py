"""Answers of costly per-value tests (rule regular expressions) remembered across batches.

A batch runs each regular expression once on the distinct values of its field; a stream meets the
same images, command lines and paths again and again, so most of those values were answered by an
earlier batch. Arrow compiles a pattern on every call (milliseconds for the long SigmaHQ
alternations), so looking the known values up and running the pattern on the new ones only (or
not at all) is what saves. The memory is bounded in characters; past that it starts over.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import pyarrow as pa

from mamori.detect.sigma import arrow_kernels as kernels


class AnswerMemo:
    """Which values passed which test (by a key naming the test), across batches."""

    SEEN_CHARS = 4_000_000  # characters of remembered values, over every test, at most
    SEEN_LONGEST = 2_000  # longer values (raw records) are not remembered: rarely seen twice

    def __init__(self, limit: int = SEEN_CHARS, longest: int = SEEN_LONGEST) -> None:
        self.limit = limit
        self.longest = longest
        self._answers: dict[Hashable, dict[str | None, bool]] = {}
        self._chars = 0

    def bits(self, key: Hashable, values: pa.Array, compute: Callable[[pa.Array], np.ndarray],
             texts: list[str | None] | None = None) -> np.ndarray:
        """Whether each value passes the test ``key`` names: remembered answers where known,
        ``compute`` (the test run on an array of values) on the others only, which are then kept.
        ``texts``: the values as Python strings, if the caller has them (tests of one field share them)."""
        if texts is None:
            texts = values.to_pylist()
        known = self._answers.get(key)
        if known is None:
            known = self._answers[key] = {}
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
        added = sum(len(text) for text in texts if text is not None and len(text) <= self.longest)
        if self._chars + added > self.limit:
            self._answers.clear()
            self._chars = 0
            known = self._answers[key] = {}
        self._chars += added
        for text, answer in zip(texts, answers.tolist(), strict=True):
            if text is None or len(text) <= self.longest:
                known[text] = answer
