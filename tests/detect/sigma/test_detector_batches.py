"""A detector's hits do not depend on how a batch is laid out or on what earlier batches left behind:
a batch in several chunks gives the hits it gives in one; a batch met again (screened, regular
expressions answered from memory, routing columns' encodings shared) gives the hits a fresh
detector gives it."""

from __future__ import annotations

import itertools

import polars as pl
from mamori_testing import shared_data

from mamori.detect.sigma import Detector, load_ruleset
from mamori.events.frame import concat_frames
from mamori.sources.evtx import read_evtx_files


def _hits(frame: pl.DataFrame, detector: Detector) -> list[tuple[str, int]]:
    return sorted(detector.detect(frame).rows())


def test_a_batch_gives_the_same_hits_in_chunks_in_one_chunk_and_met_again() -> None:
    samples = shared_data("evtx-attack-samples")
    rules = shared_data("sigmahq", "rules", "windows")
    files = sorted(samples.rglob("*.evtx"))[:60]
    whole = concat_frames([r.frame for r in read_evtx_files(files)]).rechunk()
    cuts = [0, 7, whole.height // 3, whole.height // 2, whole.height]
    chunked = pl.concat([whole[a:b] for a, b in itertools.pairwise(cuts)], rechunk=False)
    assert chunked.n_chunks() == 4
    ruleset = load_ruleset([rules])
    expected = _hits(whole, Detector(ruleset))
    assert len({rule for rule, _ in expected}) >= 20
    detector = Detector(ruleset)
    for frame in (chunked, whole, chunked):  # (from the second batch on: the screen, remembered answers)
        assert _hits(frame, detector) == expected
