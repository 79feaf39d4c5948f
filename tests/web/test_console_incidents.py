"""The incident page over HTTP: evidence upload and download by SHA-256, taking the incident, the report
downloads, and refusals shown as pages."""

from __future__ import annotations

import hashlib

from web_fixtures import Console, csrf_of, first_incident


def test_evidence_is_attached_and_downloaded_intact(console: Console) -> None:
    incident = first_incident(console)
    content = "プロセス一覧\nwhoami.exe 4242\n".encode() * 50
    with console.login("analyst") as client:
        token = csrf_of(client.get(f"/console/incidents/{incident}").text)
        answer = client.post(f"/console/incidents/{incident}/evidence", data={"csrf": token},
                             files={"file": ("ps-list.txt", content, "text/plain")})
        assert answer.status_code == 303 and answer.headers["location"].endswith("?done=evidence")
        page = client.get(answer.headers["location"]).text
        assert "ps-list.txt" in page and hashlib.sha256(content).hexdigest()[:16] in page
        link = page.split(f'href="/console/incidents/{incident}/evidence/')[1].split('"')[0]
        download = client.get(f"/console/incidents/{incident}/evidence/{link}")
    assert download.status_code == 200 and download.content == content
    assert 'filename="ps-list.txt"' in download.headers["content-disposition"]


def test_an_analyst_takes_the_incident(console: Console) -> None:
    incident = first_incident(console)
    with console.login("analyst") as client:
        token = csrf_of(client.get(f"/console/incidents/{incident}").text)
        client.post(f"/console/incidents/{incident}/owner", data={"csrf": token, "value": "analyst-user"})
    with console.api("viewer") as api:
        assert api.get(f"/api/v1/incidents/{incident}").json()["owner"] == "analyst-user"


def test_an_incident_is_not_given_to_a_name_no_user_has(console: Console) -> None:
    incident = first_incident(console)
    with console.api("viewer") as api:
        before = api.get(f"/api/v1/incidents/{incident}").json()["owner"]
    with console.login("analyst") as client:
        token = csrf_of(client.get(f"/console/incidents/{incident}").text)
        refused = client.post(f"/console/incidents/{incident}/owner", data={"csrf": token, "value": "hanakoo"})
    assert refused.status_code == 422 and "hanakoo" in refused.text
    with console.api("viewer") as api:
        assert api.get(f"/api/v1/incidents/{incident}").json()["owner"] == before


def test_the_html_report_downloads_in_the_language_asked(console: Console) -> None:
    incident = first_incident(console)
    with console.login("viewer") as client:
        english = client.get(f"/console/incidents/{incident}/report?lang=en&format=html")
        japanese = client.get(f"/console/incidents/{incident}/report?lang=ja&format=html")
    assert english.status_code == 200 and "attachment" in english.headers["content-disposition"]
    assert 'lang="en"' in english.text and 'lang="ja"' in japanese.text
    assert "Whoami Execution" in english.text


def test_a_refused_status_move_is_shown_as_a_page_with_the_reason(console: Console) -> None:
    incident = first_incident(console)
    with console.login("analyst") as client:
        token = csrf_of(client.get(f"/console/incidents/{incident}").text)
        answer = client.post(f"/console/incidents/{incident}/status",
                             data={"csrf": token, "value": "false_positive", "reason": ""})
    assert answer.status_code == 400
    assert "<h1>Error 400</h1>" in answer.text and "reason" in answer.text.lower()
