"""Rule regular expressions (RE2 semantics, as Arrow runs them) in Polars' regex engine.

Arrow compiles a pattern on every call; Polars keeps compiled patterns. A batch runs each rule regex
once on its distinct values, so with small batches (the live stream's) the compiling was the cost:
27 ms a batch for one SigmaHQ pattern with ``[^\\]{1,256}``. Rust's ``regex`` reads RE2 syntax with
two differences that matter here, both rewritten: its ``\\w \\d \\s \\b`` are Unicode-aware (RE2's
are ASCII), and inside a character class ``[`` nests and ``&& -- ~~`` are set operations (RE2 reads
them as plain characters). A pattern this cannot rewrite faithfully gets ``None``: Arrow runs it.
"""

from __future__ import annotations

import functools

# RE2's ASCII classes, outside and inside a character class
_ASCII_OUTSIDE = {"w": "(?-u:\\w)", "W": "(?-u:\\W)", "d": "[0-9]", "D": "[^0-9]", "s": "[\\t\\n\\f\\r ]",
                  "S": "[^\\t\\n\\f\\r ]", "b": "(?-u:\\b)", "B": "(?-u:\\B)"}
_ASCII_INSIDE = {"w": "0-9A-Za-z_", "d": "0-9", "s": "\\t\\n\\f\\r "}
_SET_OPERATORS = ("&&", "--", "~~")


@functools.lru_cache(maxsize=4096)
def polars_pattern(pattern: str) -> str | None:
    """The pattern with RE2's meaning in Rust regex syntax, or None when it cannot be said safely
    (a negated class escape inside brackets, nested brackets, set-operator look-alikes)."""
    out: list[str] = []
    i, size = 0, len(pattern)
    in_class = False
    class_start = 0
    while i < size:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= size:
                return None
            escaped = pattern[i + 1]
            if not escaped.isascii() or not escaped.isalnum():  # an escaped punctuation mark stands for itself
                out.append(f"\\x{{{ord(escaped):X}}}")  # (Rust reads some, like \<, as word boundaries)
            elif in_class:
                if escaped in "WDSbB":
                    return None
                out.append(_ASCII_INSIDE.get(escaped, "\\" + escaped))
            else:
                out.append(_ASCII_OUTSIDE.get(escaped, "\\" + escaped))
            i += 2
            continue
        if in_class:
            if char == "[":
                if pattern.startswith("[:", i):  # a POSIX class [:alpha:] reads the same in both
                    end = pattern.find(":]", i + 2)
                    if end < 0:
                        return None
                    out.append(pattern[i:end + 2])
                    i = end + 2
                    continue
                return None
            if pattern.startswith(_SET_OPERATORS, i):
                return None
            if char == "]" and i > class_start:
                in_class = False
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            i += 1
            if i < size and pattern[i] == "^":
                out.append("^")
                i += 1
            class_start = i  # a "]" first in the class is a plain character
            continue
        out.append(char)
        i += 1
    return None if in_class else "".join(out)
