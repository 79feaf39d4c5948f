"""Incident reports (summary, timeline, entities, ATT&CK mapping, actions taken, evidence) as HTML or PDF,
in Japanese or English.

``build(session, lake, incident_id, lang)`` reads a ``ReportData`` from the records; ``render_html`` and
``render_pdf`` write it in a language and time zone. The PDF needs the Noto CJK fonts for Japanese and
says so when they are missing.
"""

from __future__ import annotations

from mamori.report.build import build
from mamori.report.html import render_html
from mamori.report.model import ReportData
from mamori.report.pdf import render_pdf

__all__ = ["ReportData", "build", "render_html", "render_pdf"]
