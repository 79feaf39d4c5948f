"""The incident page in Japanese: the cases room's own sentences (severity basis, trail reasons, timeline
lines, refusals) are shown in Japanese, with none of their English phrases left."""

from __future__ import annotations

from web_fixtures import Console, csrf_of, first_incident

ENGLISH_PHRASES = ("highest alert level", "raised to", "opens an incident", "shares host", "opened by",
                   "opened the incident", " joined", "merged into", "detections)", "needs a reason")


def test_japanese_incident_page_shows_the_severity_basis_and_trail_in_japanese(console: Console) -> None:
    incident = first_incident(console)
    with console.login("viewer", language="ja") as client:
        page = client.get(f"/console/incidents/{incident}").text
    basis = page.split('data-testid="severity-basis">')[1].split("</td>")[0]
    assert basis.startswith("最高アラートレベル「高」")
    assert "レベル「高」のアラートのため起票" in page  # why the grouping opened it, in the trail
    assert "system：アラート 1 件でインシデントを起票" in page  # the timeline's line for its opening
    assert "［高］Whoami Execution" in page  # an alert in the timeline, level in the console's words
    for phrase in ENGLISH_PHRASES:
        assert phrase not in page, phrase


def test_english_incident_page_keeps_the_english_sentences(console: Console) -> None:
    incident = first_incident(console)
    with console.login("viewer", language="en") as client:
        page = client.get(f"/console/incidents/{incident}").text
    assert "highest alert level High" in page and "level High opens an incident" in page


def test_a_refused_status_move_is_explained_in_japanese(console: Console) -> None:
    incident = first_incident(console)
    with console.login("analyst", language="ja") as client:
        token = csrf_of(client.get(f"/console/incidents/{incident}").text)
        answer = client.post(f"/console/incidents/{incident}/status",
                             data={"csrf": token, "value": "false_positive", "reason": ""})
    assert answer.status_code == 400
    assert f"インシデント #{incident} を「誤検知」にするには理由が必要です。" in answer.text
    assert "needs a reason" not in answer.text
