"""The cases room's own sentences (severity basis, trail reasons, timeline lines, refusals) as data.

The cases room stores what it means as a message: a code and parameters (``{"code": "severity.highest",
"params": {"level": {"label": "level", "value": "high"}}}``), next to the English text it always kept.
``render`` words a message in Japanese or English from ``locales/{ja,en}.yaml`` (same keys in both, a test
checks it). A parameter is plain text, a label (``{"label": kind, "value": code}``: a level, severity,
status, change field or entity kind, worded by the caller's ``label`` hook so each page uses its own
terms), another message, or a list of those joined the way the language lists things.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mamori.locales import LANGUAGES, read_catalogue

Message = dict[str, Any]
LabelHook = Callable[[str, str], "str | None"]


def catalogue(language: str) -> dict[str, str]:
    """Every message of one language (``ja`` or ``en``, others read as English), by dotted code."""
    language = language if language in LANGUAGES else "en"
    return read_catalogue("mamori.cases", language)


def message(code: str, **params: Any) -> Message:
    """A message to store: its code and JSON parameters."""
    return {"code": code, "params": params}


def label(kind: str, value: object) -> dict[str, str]:
    """A parameter worded by the reader's labels: ``kind`` is level, severity, status, field or entity."""
    return {"label": kind, "value": str(value)}


def _label_text(kind: str, value: str, language: str, hook: LabelHook | None) -> str:
    if hook is not None:
        found = hook(kind, value)
        if found:
            return found
    return catalogue(language).get(f"labels.{kind}.{value}", value)


def _param(value: Any, language: str, hook: LabelHook | None) -> str:
    if isinstance(value, Mapping) and "code" in value:
        return render(str(value["code"]), value.get("params") or {}, language, hook)
    if isinstance(value, Mapping) and "label" in value:
        return _label_text(str(value["label"]), str(value.get("value", "")), language, hook)
    if isinstance(value, list):
        return catalogue(language)["list.separator"].join(_param(v, language, hook) for v in value)
    return "" if value is None else str(value)


def render(code: str, params: Mapping[str, Any] | None, lang: str, label: LabelHook | None = None) -> str:
    """The message ``code`` in ``lang`` with its parameters filled in; ``label(kind, value)`` words levels,
    statuses and the like in the page's own terms (None: the catalogue's ``labels``). An unknown code shows
    the code itself, as the console does with a missing key."""
    text = catalogue(lang).get(code)
    if text is None:
        return code
    values = {name: _param(value, lang, label) for name, value in (params or {}).items()}
    try:
        return text.format(**values)
    except (KeyError, IndexError):
        return text


def render_message(stored: Mapping[str, Any] | None, lang: str, fallback: str = "",
                   label: LabelHook | None = None) -> str:
    """A stored message in ``lang``, or ``fallback`` (the stored English or a person's own words) when none."""
    if not stored or "code" not in stored:
        return fallback
    return render(str(stored["code"]), stored.get("params") or {}, lang, label)


__all__ = ["LANGUAGES", "LabelHook", "Message", "catalogue", "label", "message", "render", "render_message"]
