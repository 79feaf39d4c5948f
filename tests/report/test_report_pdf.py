"""The PDF report: Japanese renders with the Noto CJK fonts and no missing glyph (no tofu), checked by the
fonts the PDF uses, its text read back through the fonts' ToUnicode maps, and every character against the
system font's cmap (fontTools); page 1 is rasterised with pdftoppm and kept as a test artifact. A control
renders Japanese without the CJK font to show these checks catch tofu. Without the CJK font the renderer
refuses, naming the package to install."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fontTools.ttLib import TTCollection, TTFont
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject
from report_fixtures import sample_report
from sqlalchemy.orm import Session, sessionmaker

from mamori.report import build, render_pdf
from mamori.report.pdf import CJK_FONT_FAMILY, font_file

NOTO_CJK = re.compile(r"^Noto-(Sans|Serif)(-Mono)?-CJK-JP(-[A-Za-z]+)?$")
HERE = Path(__file__).resolve().parent


def _fonts_used(reader: PdfReader) -> dict[str, set[str]]:
    """Base font name (subset prefix removed) -> the characters the PDF shows in it."""
    used: dict[str, set[str]] = {}

    def visit(text: str, _cm: object, _tm: object, font: DictionaryObject | None, _size: object) -> None:
        if font is not None and text.strip():
            name = str(font["/BaseFont"]).lstrip("/").split("+", 1)[-1]
            used.setdefault(name, set()).update(ch for ch in text if not ch.isspace())

    for page in reader.pages:
        page.extract_text(visitor_text=visit)
    return used


def _declared_fonts(reader: PdfReader) -> set[str]:
    names = set()
    for page in reader.pages:
        resources = page.get("/Resources")
        fonts = resources.get_object().get("/Font") if resources is not None else None
        for ref in (fonts.get_object().values() if fonts is not None else ()):
            font = ref.get_object() if isinstance(ref, IndirectObject) else ref
            names.add(str(font["/BaseFont"]).lstrip("/").split("+", 1)[-1])
    return names


def _tofu_findings(pdf: bytes, phrases: tuple[str, ...]) -> list[str]:
    """What betrays tofu in a Japanese PDF: a text font that is not Noto CJK, a phrase that does not read back."""
    reader = PdfReader(io.BytesIO(pdf))
    findings = [f"font {name}" for name in _fonts_used(reader) if not NOTO_CJK.match(name)]
    text = "".join(page.extract_text() for page in reader.pages).replace("\n", "")
    return findings + [f"phrase {p}" for p in phrases if p not in text]


PHRASES = ("インシデント報告書", "エグゼクティブサマリー", "個人情報保護委員会への報告要否の検討", "認証情報アクセス",
           "2026年11月29日 14:05 JST", "lsass-dump-抜粋.txt", "続報待ち")


def _cmap_of(family: str) -> set[int]:
    path = font_file(family)
    assert path is not None, f"fc-match does not find {family}"
    fonts = TTCollection(str(path)).fonts if path.suffix.lower() in {".ttc", ".otc"} else [TTFont(str(path))]
    for font in fonts:
        names = {str(record) for record in font["name"].names if record.nameID in (1, 16)}
        if family in names:
            return set(font.getBestCmap())
    raise AssertionError(f"{path} holds no font named {family}")


@pytest.fixture(scope="module")
def japanese_pdf(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> bytes:
    """The Japanese PDF of a real incident (records database built through the cases workflow)."""
    from report_fixtures import populate_incident

    from mamori.cases.playbooks import records  # noqa: F401  (registers the playbook migrations)
    from mamori.store.db import make_engine, migrate, session_factory

    folder = tmp_path_factory.mktemp("pdf")
    engine = make_engine(f"sqlite:///{folder / 'mamori.db'}")
    migrate(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    incident_id = populate_incident(sessions, folder / "evidence")
    with sessions() as session:
        data = build(session, None, incident_id, "ja")
    engine.dispose()
    pdf = render_pdf(data, "ja")
    (artifacts / "incident-report-ja.pdf").write_bytes(pdf)
    return pdf


def test_japanese_pdf_uses_only_noto_cjk_fonts(japanese_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(japanese_pdf))
    used = _fonts_used(reader)
    assert used, "no text found in the PDF"
    assert all(NOTO_CJK.match(name) for name in used), sorted(used)
    assert all(NOTO_CJK.match(name) for name in _declared_fonts(reader)), sorted(_declared_fonts(reader))


def test_every_character_of_the_japanese_pdf_has_a_glyph_in_the_cjk_font(japanese_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(japanese_pdf))
    assert _tofu_findings(japanese_pdf, PHRASES) == []
    text = "".join(page.extract_text() for page in reader.pages)
    characters = {ch for ch in text if not ch.isspace()}
    assert len(characters) > 100
    cmap = _cmap_of(CJK_FONT_FAMILY)
    missing = sorted(ch for ch in characters if ord(ch) not in cmap)
    assert not missing, f"characters without a glyph in {CJK_FONT_FAMILY}: {missing}"


def test_first_page_rasterises_to_a_non_blank_image(japanese_pdf: bytes, artifacts: Path) -> None:
    from PIL import Image

    tool = shutil.which("pdftoppm")
    if tool is None:
        pytest.fail("pdftoppm is missing: install poppler-utils (.ci/run does)")
    source = artifacts / "incident-report-ja.pdf"
    prefix = artifacts / "incident-report-ja-page1"
    subprocess.run([tool, "-r", "110", "-png", "-f", "1", "-l", "1", "-singlefile", str(source), str(prefix)],
                   check=True, timeout=120)
    image = Image.open(prefix.with_suffix(".png")).convert("L")
    width, height = image.size
    assert width > 800 and height > 1100  # A4 at 110 dpi
    histogram = image.histogram()
    inked = sum(histogram[:200]) / (width * height)
    assert 0.01 < inked < 0.5, f"{inked:.3%} of the page is ink"


def test_english_pdf_renders_with_cjk_text_in_the_cjk_font(artifacts: Path) -> None:
    pdf = render_pdf(sample_report(), "en")
    (artifacts / "incident-report-en.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    used = _fonts_used(reader)
    cjk_characters = {ch for name, chars in used.items() if not NOTO_CJK.match(name) for ch in chars
                      if ord(ch) > 0x2FFF}
    assert not cjk_characters, "Japanese text set in a font without Japanese glyphs"
    assert any(NOTO_CJK.match(name) for name in used)  # the Japanese note and file name
    assert "Executive summary" in "".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize("folder", ["", "/usr/share/fonts/truetype/dejavu"])
def test_missing_cjk_font_is_an_error_naming_the_package(tmp_path: Path, folder: str) -> None:
    """Under a fontconfig that knows no CJK font (none at all, or only DejaVu), rendering refuses."""
    (tmp_path / "fonts").mkdir()
    config = tmp_path / "fonts.conf"
    config.write_text(f'<?xml version="1.0"?><fontconfig><dir>{folder or tmp_path / "fonts"}</dir>'
                      f'<cachedir>{tmp_path / "cache"}</cachedir></fontconfig>', encoding="utf-8")
    script = ("from report_fixtures import sample_report\nfrom mamori.errors import MamoriError\n"
              "from mamori.report import render_pdf\n"
              "try:\n    render_pdf(sample_report(), 'ja')\nexcept MamoriError as exc:\n    print(exc)\n"
              "    raise SystemExit(3)\n")
    env = {**os.environ, "FONTCONFIG_FILE": str(config), "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Noto Sans CJK JP" in done.stdout and "fonts-noto-cjk" in done.stdout


def test_the_tofu_checks_catch_japanese_set_without_the_cjk_font(tmp_path: Path) -> None:
    """Control: bypassing the font guard under a fontconfig with only DejaVu, the checks above must fail."""
    config = tmp_path / "fonts.conf"
    config.write_text(f'<?xml version="1.0"?><fontconfig><dir>/usr/share/fonts/truetype/dejavu</dir>'
                      f'<cachedir>{tmp_path / "cache"}</cachedir></fontconfig>', encoding="utf-8")
    target = tmp_path / "tofu.pdf"
    script = ("import sys\nfrom report_fixtures import sample_report\nfrom weasyprint import HTML\n"
              "from mamori.report import render_html\n"
              "HTML(string=render_html(sample_report(), 'ja')).write_pdf(sys.argv[1])\n")
    env = {**os.environ, "FONTCONFIG_FILE": str(config), "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    findings = _tofu_findings(target.read_bytes(), PHRASES[:4])
    assert any(f.startswith("font ") for f in findings) and any(f.startswith("phrase ") for f in findings)
