"""Rule management in the console: a test run over stored events, and switching a rule off and on (admin)."""

from __future__ import annotations

from web_fixtures import Console, csrf_of

RULE_ID = "0c1a0000-0000-4000-8000-00000000c0de"


def test_rule_test_lists_the_stored_events_it_matches(console: Console) -> None:
    with console.login("analyst") as client:
        token = csrf_of(client.get("/console/rules").text)
        answer = client.post(f"/console/rules/{RULE_ID}/test", data={"csrf": token, "since": "", "until": ""},
                             headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.text
    assert "4 matching events among 4 scanned" in answer.text
    assert answer.text.count("WS-CONSOLE") == 4


def test_an_admin_disables_and_enables_a_rule_and_both_are_audited(console: Console) -> None:
    with console.login("admin") as client:
        token = csrf_of(client.get("/console/rules").text)
        client.post(f"/console/rules/{RULE_ID}/disable", data={"csrf": token})
        disabled = client.get("/console/rules?state=disabled").text
        client.post(f"/console/rules/{RULE_ID}/enable", data={"csrf": token})
        enabled = client.get("/console/rules?state=enabled").text
    assert RULE_ID in disabled and RULE_ID in enabled
    with console.api("admin") as api:
        assert api.get("/api/v1/rules").json()["rules"][0]["enabled"] is True


def test_rule_test_without_javascript_answers_a_whole_page(console: Console) -> None:
    with console.login("analyst") as client:
        token = csrf_of(client.get("/console/rules").text)
        answer = client.post(f"/console/rules/{RULE_ID}/test", data={"csrf": token, "since": "", "until": ""})
    assert answer.status_code == 200 and "<nav class=\"side\">" in answer.text
    assert "4 matching events among 4 scanned" in answer.text
