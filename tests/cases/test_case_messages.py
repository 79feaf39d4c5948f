"""The cases room's sentences as data: messages rendered in Japanese and English, both catalogues in step."""

from __future__ import annotations

from mamori.cases.grouping import load_rules, severity_message, shares_message
from mamori.cases.messages import catalogue, label, message, render, render_message
from mamori.web.i18n import catalogue as console_catalogue


def test_both_catalogues_hold_the_same_keys() -> None:
    assert set(catalogue("ja")) == set(catalogue("en"))
    assert all(text.strip() for language in ("ja", "en") for text in catalogue(language).values())


def test_a_raised_severity_basis_reads_naturally_in_japanese_and_as_before_in_english() -> None:
    severity, basis = severity_message(["high", "medium"], 1, 3, load_rules())
    assert severity == "critical"
    assert render_message(basis, "en") == "highest alert level high; raised to critical: 3 ATT&CK tactics (≥ 3)"
    assert render_message(basis, "ja") == \
        "最高アラートレベル「高」、ATT&CK 戦術が 3 つ以上（3 つ）のため「重大」に引き上げ"


def test_a_plain_severity_basis_names_the_level() -> None:
    _, basis = severity_message(["low", "high"], 1, 1, load_rules())
    assert render_message(basis, "ja") == "最高アラートレベル「高」"
    assert render_message(basis, "en") == "highest alert level high"


def test_the_label_hook_words_levels_in_the_pages_own_terms() -> None:
    _, basis = severity_message(["critical"], 1, 1, load_rules())
    words = {("level", "critical"): "緊急"}
    worded = render_message(basis, "ja", label=lambda kind, value: words.get((kind, value)))
    assert worded == "最高アラートレベル「緊急」"


def test_shared_entities_are_listed_the_way_each_language_lists_things() -> None:
    shared = shares_message([("host", "ws01"), ("user", "alice")])
    assert render_message(shared, "en") == "shares host=ws01, user=alice"
    assert render_message(shared, "ja") == "ホスト ws01、ユーザー alice を共有"


def test_nested_messages_and_plain_parameters_render() -> None:
    opened = message("workflow.opened_by", actor="analyst-user")
    assert render("timeline.with_reason", {"text": message("workflow.alert_count", count=2), "reason": opened},
                  "ja") == "アラート 2 件（analyst-user が起票）"
    assert render("refused.same", {"id": 4, "status": label("status", "resolved")}, "en") == \
        "incident 4 is already resolved"


def test_unknown_code_or_missing_message_shows_the_code_or_the_stored_text() -> None:
    assert render("no.such.code", {}, "ja") == "no.such.code"
    assert render_message(None, "ja", "a person's reason") == "a person's reason"


def test_japanese_labels_match_the_consoles() -> None:
    ours, console = catalogue("ja"), console_catalogue("ja")
    for group, theirs in (("level", "level"), ("severity", "severity"), ("status", "incident_status"),
                          ("field", "change_field"), ("entity", "entity")):
        keys = [k for k in ours if k.startswith(f"labels.{group}.")]
        assert keys
        assert all(ours[k] == console[f"{theirs}.{k.rsplit('.', 1)[1]}"] for k in keys)
