"""Render a report as PDF with WeasyPrint, refusing to produce tofu: the CJK font must be on the system.

WeasyPrint finds fonts through fontconfig; a Japanese report (or any report carrying CJK text) needs
"Noto Sans CJK JP" (Debian/Ubuntu package ``fonts-noto-cjk``). When fontconfig does not know it,
``render_pdf`` raises a MamoriError naming the font and the package, instead of writing boxes where
the Japanese should be. Fonts come from the system; none ships with Mamori.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from mamori.errors import MamoriError
from mamori.report.html import render_html
from mamori.report.model import ReportData

CJK_FONT_FAMILY = "Noto Sans CJK JP"
CJK_FONT_PACKAGE = "fonts-noto-cjk"
_CJK_TEXT = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_FONT_FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


def font_file(family: str) -> Path | None:
    """The file fontconfig uses for ``family`` when that family itself is installed (not a substitute), else
    None. Without the ``fc-match`` tool, the usual font folders are searched by file name."""
    tool = shutil.which("fc-match")
    if tool is not None:
        try:
            found = subprocess.run([tool, "--format=%{family}\n%{file}", family], capture_output=True, text=True,
                                   timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = found.stdout.splitlines()
        if found.returncode != 0 or len(lines) < 2:
            return None
        families = {name.strip() for name in lines[0].split(",")}
        path = Path(lines[1].strip())
        return path if family in families and path.is_file() else None
    stem = family.replace(" ", "").replace("JP", "")  # "NotoSansCJK": the Noto CJK files hold every region
    for folder in _FONT_FOLDERS:
        root = Path(os.path.expanduser(folder))
        if root.is_dir():
            for path in sorted(root.rglob(f"{stem}*")):
                if path.suffix.lower() in {".ttc", ".otf", ".ttf", ".otc"}:
                    return path
    return None


def needs_cjk_font(html: str, lang: str) -> bool:
    """True for a Japanese report, or any report whose text holds CJK characters."""
    return lang == "ja" or _CJK_TEXT.search(html) is not None


def require_cjk_font() -> Path:
    """The CJK font's file; a MamoriError saying which package to install when it is missing."""
    path = font_file(CJK_FONT_FAMILY)
    if path is None:
        raise MamoriError(f"the font {CJK_FONT_FAMILY!r} is not installed, so Japanese text would print as empty boxes",
                          where="report fonts",
                          hint=f"install the {CJK_FONT_PACKAGE} package (Debian/Ubuntu: apt-get install "
                               f"{CJK_FONT_PACKAGE}), or render the report as HTML")
    return path


def html_to_pdf(html: str, lang: str) -> bytes:
    """A PDF of a report page; only ``data:`` URLs may be fetched (the page is self-contained)."""
    if needs_cjk_font(html, lang):
        require_cjk_font()
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    pdf = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"})).write_pdf()
    if not isinstance(pdf, bytes):  # write_pdf without a target returns the bytes
        raise MamoriError("WeasyPrint returned no PDF", where="report pdf")
    return pdf


def render_pdf(data: ReportData, lang: str, time_zone: str | None = None) -> bytes:
    """The report as PDF bytes in ``lang`` (times as in ``render_html``); a MamoriError when the CJK font a
    Japanese report needs is missing."""
    return html_to_pdf(render_html(data, lang, time_zone), lang)


__all__ = ["CJK_FONT_FAMILY", "CJK_FONT_PACKAGE", "font_file", "html_to_pdf", "needs_cjk_font", "render_pdf",
           "require_cjk_font"]
