"""Sigma: load rules (lean model, checked against pySigma in tests), compile to column expressions,
evaluate in bulk over event batches, correlate, and explain each match."""

from mamori.detect.sigma.engine import Detector
from mamori.detect.sigma.model import Correlation, Refusal, RefusalKind, Rule, RuleSet
from mamori.detect.sigma.ruleset import load_ruleset

__all__ = ["Correlation", "Detector", "Refusal", "RefusalKind", "Rule", "RuleSet", "load_ruleset"]
