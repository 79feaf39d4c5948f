"""The Detector cache: a warm start unpickles a Detector that finds what a freshly built one finds, and
an edited rule, a damaged cache file or edited engine code gives a Detector built anew."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import polars as pl
import pytest

from mamori.detect.sigma import detector_cache
from mamori.detect.sigma.detector_cache import load_detector
from mamori.hunt import read_share
from mamori.sources.base import ReadOptions

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RULE = textwrap.dedent("""
    title: {title}
    id: 00000000-0000-0000-0000-00000000000{n}
    logsource: {{product: windows, category: process_creation}}
    detection:
        sel:
            CommandLine|contains: {text}
        condition: sel
    level: high
""")


def _events() -> pl.DataFrame:
    results = read_share([("winjson", FIXTURES / "windows" / "sysmon_flat.jsonl")], ReadOptions())
    frames = [result.frame for result, _ in results if result.frame.height]
    assert frames
    return frames[0]


def _hits(rules: Path, cache: Path) -> tuple[list[tuple[str, int]], bool]:
    """The (title, row) hits of the rules on the fixture events, and whether the Detector was cached."""
    detector, write_cache = load_detector([rules], cache_dir=cache)
    warm = write_cache is detector_cache._written
    write_cache(False)
    hits = detector.detect(_events())
    titles = {rule.id: rule.title for rule in detector.ruleset.rules}
    return sorted((titles[r], row) for r, row in hits.iter_rows()), warm


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "a.yml").write_text(RULE.format(title="Whoami", n=1, text="whoami"))
    shutil.copy(FIXTURES / "rules" / "proc_whoami.yml", folder / "b.yml")
    return folder


def test_a_warm_detector_finds_what_a_freshly_built_one_finds(rules: Path, tmp_path: Path) -> None:
    cold, was_cached = _hits(rules, tmp_path / "cache")
    assert cold and not was_cached
    assert len(list((tmp_path / "cache").glob("detector-*.pickle"))) == 1
    warm, was_cached = _hits(rules, tmp_path / "cache")
    assert was_cached
    assert warm == cold


def test_an_edited_rule_gives_a_detector_built_anew(rules: Path, tmp_path: Path) -> None:
    _hits(rules, tmp_path / "cache")
    path = rules / "a.yml"
    path.write_text(RULE.format(title="Edited", n=1, text="whoami"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    hits, was_cached = _hits(rules, tmp_path / "cache")
    assert not was_cached
    assert "Edited" in {title for title, _ in hits} and "Whoami" not in {title for title, _ in hits}


def test_a_damaged_cache_file_is_rebuilt(rules: Path, tmp_path: Path) -> None:
    cold, _ = _hits(rules, tmp_path / "cache")
    for cached in (tmp_path / "cache").glob("detector-*.pickle"):
        cached.write_bytes(b"not a pickle")
    again, was_cached = _hits(rules, tmp_path / "cache")
    assert not was_cached and again == cold
    assert _hits(rules, tmp_path / "cache") == (cold, True)


def test_edited_engine_code_gives_a_detector_built_anew(rules: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    code = tmp_path / "mamori"
    (code / "detect" / "sigma").mkdir(parents=True)
    engine = code / "detect" / "sigma" / "engine.py"
    engine.write_text("# engine\n")
    monkeypatch.setattr(detector_cache, "_PACKAGE", code)
    cold, _ = _hits(rules, tmp_path / "cache")
    assert _hits(rules, tmp_path / "cache") == (cold, True)
    engine.write_text("# engine, edited\n")
    assert _hits(rules, tmp_path / "cache") == (cold, False)


def test_no_cache_neither_reads_nor_writes_one(rules: Path, tmp_path: Path) -> None:
    detector, write_cache = load_detector([rules], cache_dir=tmp_path / "cache", use_cache=False)
    write_cache(False)
    assert detector.ruleset.rules and not (tmp_path / "cache").exists()
