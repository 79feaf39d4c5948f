"""Templates and secrets in playbook parameters.

String parameters are Jinja2 templates rendered in a sandbox over the run's context (``incident``,
``alert``, ``event``, ``playbook``, ``run``, ``steps``): a template cannot reach Python internals.
Secrets never pass through templates: ``${env:NAME}`` is replaced from the environment only in the
fields an action declares secret (URLs, headers, passwords), only just before the action runs, and
the run log keeps the placeholder, never the value. Text from events can therefore not smuggle a
``${env:...}`` into a message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

ENV_PLACEHOLDER = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_ENVIRONMENT = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=True)


class SecretMissing(Exception):
    """An ``${env:NAME}`` placeholder whose variable is not set (the message names the variable only)."""


def template_error(text: str) -> str | None:
    """Why ``text`` is not a valid template, or None when it compiles (checked when a playbook loads)."""
    try:
        _ENVIRONMENT.parse(text)
    except TemplateError as exc:
        return f"bad template: {exc.message or exc}"
    return None


@lru_cache(maxsize=4096)
def _compiled(text: str) -> Template:
    return _ENVIRONMENT.from_string(text)


def render_text(text: str, context: Mapping[str, Any]) -> str:
    """Render one template string in the sandbox (compiled once per distinct text)."""
    if "{{" not in text and "{%" not in text:
        return text
    return _compiled(text).render(dict(context))


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside ``value`` (dicts and lists are walked; other values kept)."""
    if isinstance(value, str):
        return render_text(value, context)
    if isinstance(value, Mapping):
        return {str(k): render_value(v, context) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, context) for v in value]
    return value


def resolve_secrets(value: Any, environ: Mapping[str, str] | None = None) -> tuple[Any, list[str]]:
    """Replace ``${env:NAME}`` inside ``value`` from the environment; return the value and the secret
    values used (so they can be scrubbed from any output). A missing variable raises ``SecretMissing``."""
    env = os.environ if environ is None else environ
    used: list[str] = []

    def one(text: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise SecretMissing(f"environment variable {name} is not set")
            used.append(env[name])
            return env[name]

        return ENV_PLACEHOLDER.sub(sub, text)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return one(item)
        if isinstance(item, Mapping):
            return {str(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value), used


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret value (4 characters or more) replaced by ``***``, strings walked."""
    hidden = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    if not hidden:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for secret in hidden:
                item = item.replace(secret, "***")
            return item
        if isinstance(item, Mapping):
            return {str(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)
