"""Property: no TLP:RED object, and no AMBER object to a non-partner, ever leaves through TAXII."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mamori.intel.export import export_collection
from mamori.intel.principal import Principal
from mamori.intel.serve import BackgroundServer
from mamori.intel.share import prepare_share
from mamori.intel.store import IntelStore
from mamori.intel.taxii_server import TAXII_MEDIA_TYPE, create_taxii_app
from mamori.intel.tlp import TLP2_MARKING_IDS, Tlp

PRINCIPALS = {
    "tok-jpcert": Principal("jpcert", frozenset({"*"}), partner=True),
    "tok-nisc": Principal("nisc", frozenset({"*"}), partner=True),
    "tok-public": Principal("public", frozenset({"*"})),
}
TLP1 = {
    Tlp.CLEAR: "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    Tlp.GREEN: "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    Tlp.AMBER: "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    Tlp.RED: "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
LEVELS = list(Tlp)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, IntelStore]]:
    db = Path(tmp_path_factory.mktemp("tlp")) / "tlp.db"
    store = IntelStore.open(db, max_page_size=7)
    with BackgroundServer(create_taxii_app(db, PRINCIPALS, store=store)) as running:
        yield running.url, store
    store.close()


marked = st.fixed_dictionaries(
    {
        "level": st.sampled_from([None, *LEVELS]),
        "style": st.sampled_from(
            ["tlp2", "tlp1", "granular", "custom-before", "custom-after", "never-defined", "statement-after"]
        ),
        "versions": st.integers(min_value=1, max_value=3),
    }
)


def _objects(spec: dict[str, Any], index: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Versions of one object marked as the spec says, and marking definitions to post before/after."""
    ident = f"indicator--{uuid.uuid4()}"
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    marks: dict[str, Any] = {}
    level, style = spec["level"], spec["style"]
    if style == "never-defined":
        # A marking whose definition never arrives: held back as if it were TLP:RED.
        marks = {"object_marking_refs": [f"marking-definition--{uuid.uuid4()}"]}
    elif style == "statement-after":
        statement = {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": f"marking-definition--{uuid.uuid4()}",
            "created": "2020-01-01T00:00:00.000Z",
            "definition_type": "statement",
            "definition": {"statement": "Copyright partner"},
        }
        after.append(statement)
        marks = {"object_marking_refs": [statement["id"]]}
    elif level is not None:
        if style == "tlp1" and level in TLP1:
            marks = {"object_marking_refs": [TLP1[level]]}
        elif style == "granular":
            marks = {"granular_markings": [{"marking_ref": TLP2_MARKING_IDS[level], "selectors": ["pattern"]}]}
        elif style.startswith("custom") and level in TLP1:
            custom = {
                "type": "marking-definition",
                "spec_version": "2.1",
                "id": f"marking-definition--{uuid.uuid4()}",
                "created": "2020-01-01T00:00:00.000Z",
                "definition_type": "tlp",
                "definition": {"tlp": {Tlp.CLEAR: "white"}.get(level, level.name.lower())},
            }
            (before if style == "custom-before" else after).append(custom)
            marks = {"object_marking_refs": [custom["id"]]}
        else:
            marks = {"object_marking_refs": [TLP2_MARKING_IDS[level]]}
    versions = [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": ident,
            "created": "2024-01-01T00:00:00.000Z",
            "modified": f"2024-01-0{v + 1}T00:00:00.000Z",
            "pattern": f"[ipv4-addr:value = '198.51.100.{index % 250}']",
            "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z",
            **marks,
        }
        for v in range(spec["versions"])
    ]
    return before + versions, after


def _allowed(level: Tlp, principal: Principal, audience: tuple[str, ...]) -> bool:
    if level == Tlp.RED:
        return False
    if level >= Tlp.AMBER:
        return principal.partner and (not audience or principal.name in audience)
    return True


def _collect(client: httpx.Client, url: str, params: dict[str, str]) -> list[str]:
    """Every id in every page of a paged TAXII listing."""
    ids: list[str] = []
    while True:
        response = client.get(url, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        for entry in body.get("objects", []):
            ids.append(entry["id"])
        if not body.get("more"):
            return ids
        params = {**params, "next": body["next"]}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.lists(marked, min_size=1, max_size=6),
    default=st.sampled_from(LEVELS),
    audience=st.sampled_from([(), ("jpcert",), ("nisc",), ("jpcert", "nisc")]),
    limit=st.integers(min_value=1, max_value=10),
)
def test_no_red_and_no_amber_to_non_partners_in_any_taxii_response(
    server: tuple[str, IntelStore],
    specs: list[dict[str, Any]],
    default: Tlp,
    audience: tuple[str, ...],
    limit: int,
) -> None:
    url, store = server
    info = store.create_collection("prop", collection_id=str(uuid.uuid4()), default_tlp=default)
    expected: dict[str, Tlp] = {}
    posted_after: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        objects, after = _objects(spec, index)
        store.add_objects(info.id, objects, audience=audience)
        posted_after.extend(after)
        level = spec["level"]
        if spec["style"] == "never-defined":
            level = Tlp.RED
        elif spec["style"] == "statement-after":
            level = None
        expected[objects[-1]["id"]] = default if level is None else level
        for extra in objects:
            if extra["type"] == "marking-definition":
                expected[extra["id"]] = Tlp.CLEAR  # the definition of a TLP level is public
    if posted_after:
        store.add_objects(info.id, posted_after, audience=audience)
        expected.update({m["id"]: Tlp.CLEAR if m["definition_type"] == "tlp" else default for m in posted_after})
    base = f"{url}/taxii2/api/collections/{info.id}/"
    for token, principal in PRINCIPALS.items():
        headers = {"Accept": TAXII_MEDIA_TYPE, "Authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers) as client:
            seen = set(_collect(client, base + "objects/", {"match[version]": "all", "limit": str(limit)}))
            seen |= set(_collect(client, base + "manifest/", {"match[version]": "all", "limit": str(limit)}))
            for ident in expected:
                one = client.get(base + f"objects/{ident}/", params={"match[version]": "all"})
                versions = client.get(base + f"objects/{ident}/versions/")
                if one.status_code == 200:
                    seen |= {o["id"] for o in one.json().get("objects", [])}
                if versions.status_code == 200 and versions.json().get("versions"):
                    seen.add(ident)
        exported = export_collection(store, info.id, principal.reader, redact=False).bundle["objects"]
        assert {o["id"] for o in exported} <= seen
        leaked = {i for i in seen if not _allowed(expected[i], principal, audience)}
        assert not leaked, (principal.name, {i: expected[i].label for i in leaked})
        should_see = {i for i, level in expected.items() if _allowed(level, principal, audience)}
        assert seen == should_see, principal.name


def test_a_red_share_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    store = IntelStore.open(tmp_path / "s.db")
    store.create_collection("Outgoing", alias="outgoing", outgoing=True)
    with pytest.raises(Exception, match="TLP:RED"):
        prepare_share(store, collection="outgoing", tlp=Tlp.RED, alerts=[{"id": "a"}])
    assert json.dumps(store.count()) == "0"
    store.close()
