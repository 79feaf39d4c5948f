"""Webhook action: POST JSON to a URL in one of three shapes: generic, Slack or Microsoft Teams.

- ``generic``: ``body`` (a YAML structure whose strings are templates) sent as JSON; without a body,
  the triggering event (alert, incident, event) is sent.
- ``slack``: an incoming-webhook message ``{"text": ..., "blocks": [...]}``; ``blocks`` are optional
  (Block Kit, given in the playbook); without them a section block with ``text`` is sent.
- ``teams``: ``card: message`` (default) sends a legacy Office 365 connector MessageCard with a title,
  text, theme colour and facts; ``card: adaptive`` sends an Adaptive Card (1.4) as a message attachment,
  the shape Teams workflows (Power Automate) accept.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from mamori.cases.playbooks.actions.base import ActionContext, ActionFailed, ActionType

FORMATS = ("generic", "slack", "teams")
SEVERITY_COLOURS = {"critical": "8B0000", "high": "D9534F", "medium": "F0AD4E", "low": "5BC0DE",
                    "informational": "777777"}
MAX_RESPONSE_TEXT = 2000
_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _shared_client() -> httpx.Client:
    """One HTTP client for every webhook (its TLS context is built once, about 80 ms, and connections
    are reused); httpx clients are safe to share between threads."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=False)
        return _client


def _check(params: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    fmt = params.get("format", "generic")
    if fmt not in FORMATS:
        problems.append(("format", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"))
    if fmt in ("slack", "teams") and not params.get("text") and not params.get("blocks"):
        problems.append(("text", f"a {fmt} message needs text"))
    if fmt == "teams" and params.get("card", "message") not in ("message", "adaptive"):
        problems.append(("card", "use message (MessageCard) or adaptive (Adaptive Card)"))
    if "headers" in params and not isinstance(params["headers"], dict):
        problems.append(("headers", "give headers as a mapping of name to value"))
    if "facts" in params and not isinstance(params["facts"], dict):
        problems.append(("facts", "give facts as a mapping of label to value"))
    url = params.get("url")
    if isinstance(url, str) and not (url.startswith(("http://", "https://", "${env:"))):
        problems.append(("url", "the URL must start with http:// or https:// (or be ${env:NAME})"))
    return problems


def message_body(params: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON document the webhook sends, for the format the playbook asks for."""
    fmt = params.get("format", "generic")
    if fmt == "slack":
        text = str(params.get("text", ""))
        blocks = params.get("blocks") or [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        return {"text": text, "blocks": blocks}
    if fmt == "teams":
        return _teams(params, payload)
    body = params.get("body")
    if body is None:
        return {key: payload.get(key) for key in ("kind", "actor", "changes", "alert", "incident")}
    if not isinstance(body, dict | list):
        raise ActionFailed("the generic webhook body must be a mapping or a list", retryable=False)
    return body  # type: ignore[return-value]


def _teams(params: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    title = str(params.get("title", ""))
    text = str(params.get("text", ""))
    facts = {str(k): str(v) for k, v in (params.get("facts") or {}).items()}
    severity = str((payload.get("incident") or payload.get("alert") or {}).get("severity")
                   or (payload.get("alert") or {}).get("level") or "")
    if params.get("card", "message") == "adaptive":
        body: list[dict[str, Any]] = []
        if title:
            body.append({"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True})
        if text:
            body.append({"type": "TextBlock", "text": text, "wrap": True})
        if facts:
            body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts.items()]})
        card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                "type": "AdaptiveCard", "version": "1.4", "body": body}
        if params.get("link"):
            card["actions"] = [{"type": "Action.OpenUrl", "title": str(params.get("link_title", "Open")),
                                "url": str(params["link"])}]
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
    message: dict[str, Any] = {
        "@type": "MessageCard", "@context": "https://schema.org/extensions",
        "summary": title or text[:80], "themeColor": str(params.get("theme_color") or
                                                          SEVERITY_COLOURS.get(severity, "0076D7")),
        "title": title, "text": text,
    }
    if facts:
        message["sections"] = [{"facts": [{"name": k, "value": v} for k, v in facts.items()]}]
    if params.get("link"):
        message["potentialAction"] = [{"@type": "OpenUri", "name": str(params.get("link_title", "Open")),
                                       "targets": [{"os": "default", "uri": str(params["link"])}]}]
    return message


def run(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Send the message; a 2xx answer is success, 5xx/429/transport errors are retried, other 4xx not."""
    body = message_body(params, context.payload)
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    headers.setdefault("content-type", "application/json; charset=utf-8")
    try:
        response = _shared_client().post(str(params["url"]), json=body, headers=headers, timeout=context.timeout)
    except httpx.HTTPError as exc:
        raise ActionFailed(f"{type(exc).__name__}: {exc}") from exc
    output = {"status_code": response.status_code, "response": response.text[:MAX_RESPONSE_TEXT]}
    if response.is_success:
        return output
    retryable = response.status_code >= 500 or response.status_code in (408, 429)
    raise ActionFailed(f"the webhook answered HTTP {response.status_code}", retryable=retryable, output=output)


ACTION = ActionType(
    name="webhook", run=run, required=("url",),
    optional=("format", "body", "text", "blocks", "title", "facts", "card", "theme_color", "link", "link_title",
              "headers"),
    secret=("url", "headers"), check=_check,
    description="POST JSON (generic, Slack or Microsoft Teams) to a URL",
)
