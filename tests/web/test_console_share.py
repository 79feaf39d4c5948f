"""Sharing an incident from the console: the form on the incident page prepares a redacted draft, the share's
page lists every redaction for review, publishing puts it into the outgoing TAXII collection; refusals are pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from web_fixtures import Console, csrf_of, wait_for

EMAIL = "hanako.sato@example.co.jp"
MEDIA = "application/taxii+json;version=2.1"


def _incident_with_personal_data(console: Console) -> int:
    """An incident of its own (new host and user, no shared address) whose command line holds an e-mail address."""
    event = {"EventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "Hostname": "WS-SHARE-CONSOLE",
             "EventID": 4688, "Channel": "Security", "SourceName": "Microsoft-Windows-Security-Auditing",
             "NewProcessName": "C:\\Windows\\System32\\whoami.exe", "CommandLine": f"whoami /all & echo {EMAIL}",
             "SubjectUserName": "sato"}
    with console.api("analyst") as api:
        assert api.post("/api/v1/ingest", json=[event]).status_code == 202

        def found() -> int | None:
            for incident in api.get("/api/v1/incidents").json()["incidents"]:
                if "ws-share-console" in [str(h).lower() for h in incident["entities"].get("host", [])]:
                    return int(incident["id"])
            return None

        return wait_for(found)


def _outgoing_objects(console: Console) -> list[dict[str, Any]]:
    headers = {"Accept": MEDIA}
    with console.api("viewer") as api:
        root = api.get("/taxii2/", headers=headers).json()["api_roots"][0].rstrip("/").rsplit("/", 1)[-1]
        collections = api.get(f"/taxii2/{root}/collections/", headers=headers).json()["collections"]
        outgoing = next(c for c in collections if c["title"] == "Shared by us")
        objects: list[dict[str, Any]] = api.get(f"/taxii2/{root}/collections/{outgoing['id']}/objects/",
                                                headers=headers).json().get("objects", [])
    return objects


def test_an_analyst_prepares_reviews_and_publishes_a_share_from_the_incident_page(console: Console) -> None:
    incident = _incident_with_personal_data(console)
    with console.login("analyst") as client:
        page = client.get(f"/console/incidents/{incident}").text
        assert 'data-testid="share-form"' in page
        answer = client.post("/console/shares", data={"csrf": csrf_of(page), "incident": str(incident),
                                                      "tlp": "green", "audience": ""})
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert re.fullmatch(rf"/console/shares/[0-9a-f-]{{36}}\?incident={incident}", location)
        review = client.get(location).text
        assert "Personal data removed (1)" in review and "[REDACTED:email]" in review
        assert EMAIL not in review
        assert "TLP:GREEN" in review and "Draft (not published)" in review
        published = client.post(location.split("?")[0] + "/publish",
                                data={"csrf": csrf_of(review), "incident": str(incident)})
        assert published.status_code == 303
        after = client.get(published.headers["location"]).text
        assert "Published to the outgoing collection" in after and 'data-testid="publish-form"' not in after
    reports = [o for o in _outgoing_objects(console) if o["type"] == "report"
               and f"Incident {incident}:" in o.get("description", "")]
    assert len(reports) == 1 and EMAIL not in str(reports[0])


def test_the_review_page_reads_in_japanese(console: Console) -> None:
    incident = _incident_with_personal_data(console)
    with console.login("analyst", language="ja") as client:
        page = client.get(f"/console/incidents/{incident}").text
        assert "パートナーと共有" in page
        answer = client.post("/console/shares", data={"csrf": csrf_of(page), "incident": str(incident),
                                                      "tlp": "clear"})
        review = client.get(answer.headers["location"]).text
    assert "削除した個人情報" in review and "下書き（未公開）" in review


def test_amber_without_partners_is_refused_with_the_reason(console: Console) -> None:
    incident = _incident_with_personal_data(console)
    with console.login("analyst") as client:
        token = csrf_of(client.get(f"/console/incidents/{incident}").text)
        nobody = client.post("/console/shares", data={"csrf": token, "incident": str(incident), "tlp": "amber"})
        stranger = client.post("/console/shares", data={"csrf": token, "incident": str(incident), "tlp": "amber",
                                                        "audience": "mallory"})
        red = client.post("/console/shares", data={"csrf": token, "incident": str(incident), "tlp": "red"})
    assert nobody.status_code == 422 and "TLP:AMBER may go only to named partners" in nobody.text
    assert stranger.status_code == 422 and "not TLP partners: mallory" in stranger.text
    assert red.status_code == 422 and "TLP:RED information never leaves Mamori" in red.text


def test_viewers_see_no_share_form_and_may_not_share(console: Console) -> None:
    incident = _incident_with_personal_data(console)
    with console.login("viewer") as client:
        page = client.get(f"/console/incidents/{incident}").text
        assert 'data-testid="share-form"' not in page
        refused = client.post("/console/shares", data={"csrf": csrf_of(page), "incident": str(incident)})
        missing = client.get("/console/shares/no-such-share")
    assert refused.status_code == 403
    assert missing.status_code == 404 and "There is no share no-such-share." in missing.text


def test_a_share_without_the_form_token_is_refused(console: Console) -> None:
    incident = _incident_with_personal_data(console)
    with console.login("analyst") as client:
        answer = client.post("/console/shares", data={"incident": str(incident), "tlp": "green"})
    assert answer.status_code == 403
