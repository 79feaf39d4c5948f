"""A retro-hunt over the stored events runs correlation chains whole (asking for the outer correlation
brings in the correlations and rules it names) and decides, once the stored events have ended, the
windows that are decided at close."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from correlation_testing import BRUTE_FORCE, INNER, OUTER, SPEC_EXAMPLE, frames, logon_log

from mamori.detect.sigma.ruleset import load_ruleset
from mamori.service.retrohunt import hunt_lake, subset
from mamori.store.lake import Lake

LONE_FAILURE = ("title: A lone failed logon\nid: lone-failure\nlevel: low\ncorrelation:\n  type: event_count\n"
                "  rules: [failed_login]\n  group-by: [User]\n  timespan: 10m\n  condition: {lt: 2}\n")


def _lake(tmp_path: Path, frames: list[pl.DataFrame]) -> Lake:
    lake = Lake(tmp_path / "lake")
    for number, frame in enumerate(frames):
        lake.write(frame, number, number + 1)
    return lake


def test_asking_for_the_outer_correlation_runs_its_whole_chain_over_the_lake(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "mr_failed_then_success.yml").write_text(SPEC_EXAMPLE)
    chosen = subset(load_ruleset([rules], use_cache=False), [OUTER])
    assert {c.id for c in chosen.correlations} == {OUTER, INNER}
    assert len(chosen.rules) == 2  # failed and successful logins
    lake = _lake(tmp_path, frames(logon_log(tmp_path, BRUTE_FORCE)))
    hits, total, events = hunt_lake(lake, chosen)
    assert events == len(BRUTE_FORCE) and total == 4
    assert [(h.rule_id, h.source) for h in hits] == [(OUTER, "correlation")]


def test_a_window_decided_at_close_is_decided_when_the_stored_events_end(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "mr_lone_failure.yml").write_text(SPEC_EXAMPLE.split("---\n")[2] + "---\n" + LONE_FAILURE)
    lake = _lake(tmp_path, frames(logon_log(tmp_path, [(4625, 0, "bob")])))
    hits, _, _ = hunt_lake(lake, subset(load_ruleset([rules], use_cache=False), ["lone-failure"]))
    assert [h.rule_id for h in hits] == ["lone-failure"]
