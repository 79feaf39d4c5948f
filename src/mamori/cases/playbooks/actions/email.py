"""E-mail action: send a UTF-8 text message over SMTP (optionally STARTTLS and login).

STARTTLS verifies the server's certificate (against ``ca_file`` when the server uses an internal CA).
``user`` and ``password`` are secret fields (give them as ``${env:NAME}``); ``subject`` and ``body``
are templates, Japanese text included (the message is encoded as UTF-8 with MIME headers).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from mamori.cases.playbooks.actions.base import ActionContext, ActionFailed, ActionType


def _recipients(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return []


def _check(params: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not _recipients(params.get("to")):
        problems.append(("to", "give at least one recipient address"))
    port = params.get("port", 25)
    if not isinstance(port, int) or not 0 < port < 65536:
        problems.append(("port", f"{port!r} is not a port number"))
    if "starttls" in params and not isinstance(params["starttls"], bool):
        problems.append(("starttls", "use true or false"))
    if ("user" in params) != ("password" in params):
        problems.append(("password" if "user" in params else "user", "give user and password together"))
    return problems


def build_message(params: dict[str, Any]) -> EmailMessage:
    """The message the action sends (UTF-8 subject and body)."""
    message = EmailMessage()
    message["From"] = str(params.get("sender", "mamori@localhost"))
    message["To"] = ", ".join(_recipients(params.get("to")))
    if _recipients(params.get("cc")):
        message["Cc"] = ", ".join(_recipients(params.get("cc")))
    message["Subject"] = str(params.get("subject", "")).replace("\n", " ").strip()
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="mamori.local")
    message.set_content(str(params.get("body", "")), charset="utf-8")
    return message


def run(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Send the message; SMTP and connection errors are retried, refused recipients are not."""
    message = build_message(params)
    recipients = _recipients(params.get("to")) + _recipients(params.get("cc"))
    host, port = str(params.get("host", "127.0.0.1")), int(params.get("port", 25))
    try:
        with smtplib.SMTP(host, port, timeout=context.timeout) as smtp:
            if params.get("starttls", False):
                smtp.starttls(context=ssl.create_default_context(cafile=params.get("ca_file") or None))
            if params.get("user"):
                smtp.login(str(params["user"]), str(params.get("password", "")))
            refused = smtp.send_message(message, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        raise ActionFailed(f"every recipient was refused: {sorted(exc.recipients)}", retryable=False) from exc
    except ssl.SSLCertVerificationError as exc:
        raise ActionFailed(f"the SMTP server's certificate is not trusted: {exc.verify_message}",
                           retryable=False) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise ActionFailed(f"SMTP login refused ({exc.smtp_code})", retryable=False) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise ActionFailed(f"{type(exc).__name__}: {exc}") from exc
    return {"message_id": message["Message-ID"], "recipients": recipients,
            "refused": sorted(refused), "server": f"{host}:{port}"}


ACTION = ActionType(
    name="email", run=run, required=("to", "subject", "body"),
    optional=("host", "port", "starttls", "ca_file", "user", "password", "sender", "cc"),
    secret=("user", "password"), check=_check,
    description="send an e-mail over SMTP (STARTTLS and login optional)",
)
