"""A test's hash is worked out once and kept, but never carried into a pickle (string hashes differ
between processes): a test read back from a cached rule set finds the memo entries of its equals."""

from __future__ import annotations

import pickle

from mamori.detect.sigma import plan
from mamori.detect.sigma.plan import CONTAINS, EQ


def test_a_test_keeps_its_hash_but_leaves_it_out_of_a_pickle() -> None:
    test = plan.Test("CommandLine", EQ, frozenset({"a", "b"}), False)
    assert "_hash" not in test.__dict__
    first = hash(test)
    assert test.__dict__["_hash"] == first == hash(test)
    copy = pickle.loads(pickle.dumps(test))
    assert "_hash" not in copy.__dict__
    memo = {test: "answer", plan.Test("Image", CONTAINS, "\\cmd.exe", False): "other"}
    assert memo[copy] == "answer" and hash(copy) == first
