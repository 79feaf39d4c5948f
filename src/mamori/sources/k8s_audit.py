"""Kubernetes API server audit log (``audit.k8s.io`` Event objects, one per line).

Fields keep the Event names dotted (``verb``, ``user.username``, ``objectRef.resource``,
``objectRef.namespace``, ``requestURI``, ``responseStatus.code``, ``sourceIPs``...); time from
``requestReceivedTimestamp`` (``stageTimestamp`` otherwise).
"""

from __future__ import annotations

from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "k8s_audit"
parse_k8s = json_parser(("requestReceivedTimestamp", "stageTimestamp", "timestamp"), ())


def sniff_k8s(head: bytes, name: str) -> bool:
    """Claim audit Events: ``auditID`` with ``verb`` or the ``audit.k8s.io`` API version."""
    return json_head_has(head, '"auditID"') and json_head_has(head, '"verb"', "audit.k8s.io")


SPECS = [json_source(SOURCE, "Kubernetes API server audit log (JSON)", parse_k8s, sniff_k8s, priority=75)]
