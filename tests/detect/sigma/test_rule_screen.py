"""Screening the rules of a batch all at once: the clauses each plan needs, when they say exactly what
the test-by-test walk says, and the same detections as walking on the SigmaHQ set and real attacks."""

from __future__ import annotations

from mamori_testing import shared_data

from mamori.detect.sigma import Detector, load_ruleset, plan
from mamori.detect.sigma.evaluate import BatchEvaluator, LiteralBank
from mamori.detect.sigma.plan import CONTAINS, ENDS, EQ, EXISTS, PAnd, PAtLeast, PConst, PNot, POr, PTest
from mamori.detect.sigma.screen import Screen, plan_clauses
from mamori.sources.winjson import records_to_frame

IMAGE_EXE = PTest(plan.Test("Image", ENDS, "\\evil.exe"))
IMAGE_DLL = PTest(plan.Test("Image", ENDS, "\\evil.dll"))
COMMAND = PTest(plan.Test("CommandLine", CONTAINS, "-enc"))
EVENT = PTest(plan.Test("EventID", EQ, frozenset({"1"})))
ANY_USER = PTest(plan.Test("User", EXISTS, True))


def test_an_and_of_value_lists_needs_one_clause_per_list_exactly() -> None:
    clauses, exact = plan_clauses(PAnd((EVENT, POr((IMAGE_EXE, IMAGE_DLL)), COMMAND, PNot(ANY_USER))))
    assert exact
    assert clauses is not None
    assert sorted(len(c) for c in clauses) == [1, 1, 2]


def test_an_or_of_and_groups_is_screened_by_one_joined_clause_and_walked_after() -> None:
    clauses, exact = plan_clauses(POr((PAnd((EVENT, IMAGE_EXE)), PAnd((EVENT, COMMAND)))))
    assert not exact
    assert clauses is not None and len(clauses) == 1


def test_a_test_that_tells_nothing_in_advance_makes_its_or_unconditional() -> None:
    assert plan_clauses(POr((IMAGE_EXE, ANY_USER))) == ([], True)
    assert plan_clauses(PAtLeast(2, (IMAGE_EXE, COMMAND)))[1] is False
    assert plan_clauses(PAnd((IMAGE_EXE, PConst(False)))) == (None, True)


def test_the_screen_passes_exactly_the_rules_whose_literals_occur() -> None:
    frame = records_to_frame([{"EventID": 1, "Image": "C:\\x\\EVIL.exe", "CommandLine": "a b"}], "test")
    plans = [PAnd((EVENT, IMAGE_EXE)), PAnd((EVENT, COMMAND)), POr((IMAGE_DLL, COMMAND)), PNot(COMMAND),
             PAnd((PTest(plan.Test("EventID", EQ, frozenset({"4688"}))), IMAGE_EXE))]
    bank = LiteralBank({("Image", False): ["\\evil.exe", "\\evil.dll"], ("CommandLine", False): ["-enc"]})
    evaluator = BatchEvaluator(frame, None, bank)
    assert Screen(plans).passing(evaluator).tolist() == [True, False, False, True, False]
    assert [evaluator.may_match(p) for p in plans] == [True, False, False, True, False]


def test_screened_batches_fire_what_walked_ones_do_on_the_attack_samples() -> None:
    samples = shared_data("evtx-attack-samples")
    rules = shared_data("sigmahq", "rules", "windows")
    from mamori.events.frame import concat_frames
    from mamori.sources.evtx import read_evtx_files

    frame = concat_frames([r.frame for r in read_evtx_files(sorted(samples.rglob("*.evtx")))])
    detector = Detector(load_ruleset([rules]))
    walked = detector.detect(frame)
    screened = detector.detect(frame)
    assert walked.height > 1000
    assert screened.sort(["rule_id", "_row"]).equals(walked.sort(["rule_id", "_row"]))
