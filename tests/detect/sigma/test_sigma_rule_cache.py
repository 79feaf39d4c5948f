"""The compiled rule-set cache: a warm start reuses it, any edited, added or removed rule file is seen."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from mamori.detect.sigma.ruleset import load_ruleset

RULE = textwrap.dedent("""
    title: {title}
    id: 00000000-0000-0000-0000-00000000000{n}
    logsource: {{product: windows, category: process_creation}}
    detection:
        sel:
            CommandLine|contains: whoami
        condition: sel
    level: high
""")


def _titles(folder: Path, cache: Path) -> list[str]:
    return sorted(r.title for r in load_ruleset([folder], cache_dir=cache).rules)


def test_warm_load_comes_from_the_cache_and_edits_invalidate_it(tmp_path: Path) -> None:
    rules, cache = tmp_path / "rules", tmp_path / "cache"
    rules.mkdir()
    first = rules / "a.yml"
    first.write_text(RULE.format(title="First", n=1))
    assert _titles(rules, cache) == ["First"]
    assert len(list(cache.glob("rules-*.pickle"))) == 1
    assert _titles(rules, cache) == ["First"]  # warm: same key, no second cache file
    assert len(list(cache.glob("rules-*.pickle"))) == 1

    first.write_text(RULE.format(title="Edited", n=1))  # same size, later modification time
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 1_000_000))
    assert _titles(rules, cache) == ["Edited"]

    (rules / "b.yml").write_text(RULE.format(title="Added", n=2))
    assert _titles(rules, cache) == ["Added", "Edited"]

    first.unlink()
    assert _titles(rules, cache) == ["Added"]


def test_the_rule_set_digest_is_over_content_not_file_times(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    path = rules / "a.yml"
    path.write_text(RULE.format(title="Same", n=1))
    before = load_ruleset([rules], cache_dir=tmp_path / "cache").digest
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000))
    after = load_ruleset([rules], cache_dir=tmp_path / "cache").digest
    assert before == after
