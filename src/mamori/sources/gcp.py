"""Google Cloud audit logs (Cloud Logging ``LogEntry`` with an ``AuditLog`` ``protoPayload``), as exported
by sinks or ``gcloud logging read --format=json``; Google Workspace audit entries too.

Fields keep the LogEntry names dotted (``protoPayload.methodName``, ``protoPayload.serviceName``,
``protoPayload.authenticationInfo.principalEmail``, ``resource.type``...); SigmaHQ's
``gcp.audit.method_name`` and ``data.protoPayload.*`` names are aliases in the log-source mapping.
Time from ``timestamp``.
"""

from __future__ import annotations

from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "gcp_audit"
parse_gcp = json_parser(("timestamp", "receiveTimestamp"), ("resource.labels.instance_id",))


def sniff_gcp(head: bytes, name: str) -> bool:
    """Claim Cloud Logging entries with an audit ``protoPayload``."""
    return json_head_has(head, '"protoPayload"') and json_head_has(head, '"logName"', '"methodName"', '"insertId"')


SPECS = [json_source(SOURCE, "Google Cloud audit log (LogEntry JSON)", parse_gcp, sniff_gcp, priority=75)]
