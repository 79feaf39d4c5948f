"""The TAXII 2.1 server, driven through taxii2-client (the real client) and raw HTTP."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from taxii2client.common import TokenAuth
from taxii2client.exceptions import AccessError
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from mamori.intel.principal import Principal
from mamori.intel.serve import BackgroundServer, TlsFiles
from mamori.intel.store import IntelStore
from mamori.intel.taxii_server import TAXII_MEDIA_TYPE, create_taxii_app
from mamori.intel.tlp import Tlp, marking_for

TOKENS = {
    "writer-token": Principal("writer", frozenset({"*"}), frozenset({"*"}), partner=True),
    "reader-token": Principal("reader", frozenset({"*"})),
    "partner-token": Principal("jpcert", frozenset({"*"}), partner=True),
    "other-partner-token": Principal("nisc", frozenset({"*"}), partner=True),
    "public-only-token": Principal("public", frozenset({"public"})),
    "write-only-token": Principal("dropbox", frozenset(), frozenset({"inbox"})),
}
BIG_COUNT = 10_500


def indicator(
    value: str,
    *,
    modified: str = "2024-01-01T00:00:00.000Z",
    tlp: Tlp | None = None,
    ident: str | None = None,
) -> dict[str, Any]:
    """A STIX 2.1 indicator for an IPv4 address, optionally TLP-marked."""
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": ident or f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, value)}",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": modified,
        "pattern": f"[ipv4-addr:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
    }
    if tlp is not None:
        obj["object_marking_refs"] = [marking_for(tlp)]
    return obj


@dataclass(frozen=True)
class Taxii:
    """A running TAXII server and what the tests need to address it."""

    url: str
    store: IntelStore

    @property
    def api_root(self) -> str:
        return f"{self.url}/taxii2/api/"

    def collection_url(self, alias: str) -> str:
        info = self.store.find_collection(alias)
        assert info is not None
        return f"{self.api_root}collections/{info.id}/"


@pytest.fixture(scope="module")
def taxii(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Taxii]:
    """A TAXII server with collections intel, public, inbox and big (10,500 objects)."""
    db = Path(tmp_path_factory.mktemp("taxii")) / "intel.db"
    store = IntelStore.open(db, max_page_size=1000)
    store.create_collection("Intel", alias="intel", description="shared indicators")
    store.create_collection("Public", alias="public")
    store.create_collection("Inbox", alias="inbox")
    big = store.create_collection("Big", alias="big")
    store.add_objects(big.id, [indicator(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}") for i in range(BIG_COUNT)])
    app = create_taxii_app(db, TOKENS, store=store)
    with BackgroundServer(app) as server:
        yield Taxii(url=server.url, store=store)
    store.close()


HEADERS = {"Accept": TAXII_MEDIA_TYPE}


def auth(token: str = "writer-token") -> TokenAuth:
    return TokenAuth(token)


def raw(token: str | None = "writer-token", **extra: str) -> dict[str, str]:
    headers = dict(HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(extra)
    return headers


def test_discovery_lists_the_default_api_root(taxii: Taxii) -> None:
    server = Server(f"{taxii.url}/taxii2/", auth=auth())
    assert server.title == "Mamori TAXII 2.1"
    assert server.default.url == taxii.api_root
    assert [root.url for root in server.api_roots] == [taxii.api_root]


def test_api_root_information_names_taxii_21_and_max_content_length(taxii: Taxii) -> None:
    root = ApiRoot(taxii.api_root, auth=auth())
    assert root.versions == [TAXII_MEDIA_TYPE]
    assert root.max_content_length > 0


def test_collections_show_only_what_a_principal_may_use_with_its_rights(taxii: Taxii) -> None:
    reader = {c.alias: c for c in ApiRoot(taxii.api_root, auth=auth("reader-token")).collections}
    assert {"intel", "public", "inbox", "big"} <= set(reader)
    assert reader["intel"].can_read and not reader["intel"].can_write
    public_only = ApiRoot(taxii.api_root, auth=auth("public-only-token")).collections
    assert [c.alias for c in public_only] == ["public"]
    dropbox = {c.alias: c for c in ApiRoot(taxii.api_root, auth=auth("write-only-token")).collections}
    assert list(dropbox) == ["inbox"] and dropbox["inbox"].can_write and not dropbox["inbox"].can_read


def test_posted_objects_are_acknowledged_by_a_status_resource_and_readable(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("intel"), auth=auth())
    objects = [indicator("192.0.2.1"), indicator("192.0.2.2"), {"type": "indicator", "id": "bad"}]
    status = collection.add_objects({"objects": objects})
    assert (status.status, status.total_count, status.success_count, status.failure_count) == (
        "complete",
        3,
        2,
        1,
    )
    assert status.failures[0]["id"] == "bad" and "uuid" in status.failures[0]["message"].lower()
    again = ApiRoot(taxii.api_root, auth=auth()).get_status(status.id)
    assert again.success_count == 2
    someone_else = httpx.get(f"{taxii.api_root}status/{status.id}/", headers=raw("reader-token"))
    assert someone_else.status_code == 404  # a status tells only its requester what happened
    got = collection.get_objects(id=objects[0]["id"])
    assert [o["id"] for o in got["objects"]] == [objects[0]["id"]]


def test_posting_the_same_object_twice_stores_it_once(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("intel"), auth=auth())
    obj = indicator("192.0.2.50")
    collection.add_objects({"objects": [obj]})
    collection.add_objects({"objects": [obj]})
    versions = collection.object_versions(obj["id"])
    assert versions["versions"] == ["2024-01-01T00:00:00.000000Z"]


def test_versions_filters_pick_first_last_all_or_a_timestamp(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("intel"), auth=auth())
    ident = "indicator--4e0cfd3a-0f1e-4a3b-9f0e-8c1b2a3d4e5f"
    stamps = ["2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z", "2024-04-01T00:00:00.000Z"]
    collection.add_objects({"objects": [indicator("198.51.100.7", modified=m, ident=ident) for m in stamps]})
    assert collection.get_object(ident)["objects"][0]["modified"] == stamps[-1]
    assert collection.get_object(ident, version="first")["objects"][0]["modified"] == stamps[0]
    assert len(collection.get_object(ident, version="all")["objects"]) == 3
    assert collection.get_object(ident, version=stamps[1])["objects"][0]["modified"] == stamps[1]
    assert len(collection.get_objects(id=ident, version="first,last")["objects"]) == 2
    versions = collection.object_versions(ident)
    assert versions["versions"] == [s.replace(".000Z", ".000000Z") for s in stamps]
    manifest = collection.get_manifest(id=ident, version="all")
    assert {e["media_type"] for e in manifest["objects"]} == {"application/stix+json;version=2.1"}
    assert [e["version"] for e in manifest["objects"]] == versions["versions"]


def test_match_type_and_spec_version_filter_objects(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("intel"), auth=auth())
    ident = "identity--0f1e2d3c-4b5a-4968-8776-655443322110"
    collection.add_objects(
        {
            "objects": [
                {
                    "type": "identity",
                    "spec_version": "2.1",
                    "id": ident,
                    "name": "CSIRT",
                    "created": "2024-01-01T00:00:00Z",
                    "modified": "2024-01-01T00:00:00Z",
                }
            ]
        }
    )
    identities = collection.get_objects(type="identity")["objects"]
    assert [o["id"] for o in identities] == [ident]
    assert "objects" not in collection.get_objects(type="identity", spec_version="2.0")
    assert len(collection.get_objects(type="identity,indicator")["objects"]) > 1


def test_added_after_returns_only_objects_added_later_with_date_headers(taxii: Taxii) -> None:
    url = taxii.collection_url("intel") + "objects/"
    first = httpx.get(url, headers=raw(), params={"limit": "1"})
    assert first.headers["content-type"] == TAXII_MEDIA_TYPE
    last_added = first.headers["X-TAXII-Date-Added-Last"]
    later = httpx.get(url, headers=raw(), params={"added_after": last_added, "match[version]": "all"})
    all_versions = httpx.get(url, headers=raw(), params={"match[version]": "all"})
    assert len(later.json()["objects"]) == len(all_versions.json()["objects"]) - 1


def test_deleting_a_version_then_the_object_removes_them(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("intel"), auth=auth())
    ident = "indicator--7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
    stamps = ["2024-05-01T00:00:00.000Z", "2024-06-01T00:00:00.000Z"]
    collection.add_objects({"objects": [indicator("203.0.113.9", modified=m, ident=ident) for m in stamps]})
    collection.delete_object(ident, version=stamps[0])
    assert collection.object_versions(ident)["versions"] == ["2024-06-01T00:00:00.000000Z"]
    collection.delete_object(ident)
    with pytest.raises(requests.HTTPError) as missing:
        collection.get_object(ident)
    assert missing.value.response is not None and missing.value.response.status_code == 404


def test_paging_walks_more_than_ten_thousand_objects_exactly_once(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("big"), auth=auth())
    seen: list[str] = []
    for envelope in as_pages(collection.get_objects, per_request=1000):
        seen.extend(o["id"] for o in envelope.get("objects", []))
    assert len(seen) == BIG_COUNT == len(set(seen))
    manifest_ids: list[str] = []
    for envelope in as_pages(collection.get_manifest, per_request=2500):
        manifest_ids.extend(e["id"] for e in envelope.get("objects", []))
    assert manifest_ids == seen


def test_server_caps_the_page_size_and_paging_by_added_after_also_covers_everything(taxii: Taxii) -> None:
    url = taxii.collection_url("big") + "objects/"
    seen = 0
    params = {"limit": "5000"}
    with httpx.Client(headers=raw()) as client:
        while True:
            response = client.get(url, params=params)
            objects = response.json().get("objects", [])
            if not objects:
                break
            assert len(objects) <= 1000
            seen += len(objects)
            params = {"limit": "5000", "added_after": response.headers["X-TAXII-Date-Added-Last"]}
    assert seen == BIG_COUNT


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"added_after": "yesterday"}, "added_after"),
        ({"match[spec_version]": "3.0"}, "spec_version"),
        ({"match[version]": "newest"}, "match[version]"),
        ({"next": "not-a-token"}, "next"),
        ({"match[colour]": "red"}, "match[colour]"),
    ],
)
def test_bad_query_parameters_are_refused_with_a_taxii_error(
    taxii: Taxii, params: dict[str, str], fragment: str
) -> None:
    response = httpx.get(taxii.collection_url("intel") + "objects/", headers=raw(), params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == TAXII_MEDIA_TYPE
    body = response.json()
    assert body["http_status"] == "400" and fragment in body["description"]


def test_posts_with_wrong_media_type_bad_json_or_too_large_are_refused(taxii: Taxii) -> None:
    url = taxii.collection_url("intel") + "objects/"
    wrong_type = httpx.post(url, headers=raw(**{"Content-Type": "application/json"}), content=b'{"objects":[]}')
    assert wrong_type.status_code == 415
    taxii_type = {"Content-Type": TAXII_MEDIA_TYPE}
    not_json = httpx.post(url, headers=raw(**taxii_type), content=b"{objects")
    assert not_json.status_code == 400
    not_envelope = httpx.post(url, headers=raw(**taxii_type), content=b'{"objects": 5}')
    assert not_envelope.status_code == 400
    too_large = httpx.post(url, headers=raw(**taxii_type), content=b" " * (16 * 1024 * 1024 + 1))
    assert too_large.status_code == 413
    assert too_large.json()["title"] == "Payload Too Large"


def test_an_accept_header_without_taxii_is_not_acceptable(taxii: Taxii) -> None:
    response = httpx.get(
        f"{taxii.url}/taxii2/", headers={"Accept": "application/json", "Authorization": "Bearer reader-token"}
    )
    assert response.status_code == 406
    old = httpx.get(f"{taxii.url}/taxii2/", headers=raw("reader-token", Accept="application/taxii+json;version=2.0"))
    assert old.status_code == 406


def test_unknown_resources_are_not_found(taxii: Taxii) -> None:
    assert httpx.get(f"{taxii.url}/taxii2/nowhere/", headers=raw()).status_code == 404
    assert httpx.get(f"{taxii.api_root}collections/nope/", headers=raw()).status_code == 404
    assert httpx.get(f"{taxii.api_root}status/nope/", headers=raw()).status_code == 404
    missing = httpx.get(
        taxii.collection_url("intel") + "objects/indicator--00000000-0000-4000-8000-000000000000/",
        headers=raw(),
    )
    assert missing.status_code == 404 and missing.headers["content-type"] == TAXII_MEDIA_TYPE


def test_missing_or_unknown_tokens_are_unauthorized(taxii: Taxii) -> None:
    for headers in (
        raw(None),
        raw(None, Authorization="Bearer wrong"),
        raw(None, Authorization="Basic eDp5"),
    ):
        response = httpx.get(f"{taxii.url}/taxii2/", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["http_status"] == "401"


def test_permissions_bind_reads_and_writes_to_tokens(taxii: Taxii) -> None:
    url = taxii.collection_url("intel") + "objects/"
    body = json.dumps({"objects": [indicator("192.0.2.99")]})
    reader_post = httpx.post(url, headers=raw("reader-token", **{"Content-Type": TAXII_MEDIA_TYPE}), content=body)
    assert reader_post.status_code == 403
    assert httpx.get(url, headers=raw("public-only-token")).status_code == 404
    inbox = taxii.collection_url("inbox") + "objects/"
    assert httpx.get(inbox, headers=raw("write-only-token")).status_code == 403
    posted = httpx.post(inbox, headers=raw("write-only-token", **{"Content-Type": TAXII_MEDIA_TYPE}), content=body)
    assert posted.status_code == 202 and posted.json()["success_count"] == 1
    some_id = json.loads(body)["objects"][0]["id"]
    reader_delete = httpx.delete(inbox + some_id + "/", headers=raw("reader-token"))
    assert reader_delete.status_code == 403
    with pytest.raises(AccessError):
        Collection(taxii.collection_url("intel"), auth=auth("reader-token")).add_objects({"objects": []})


def test_tlp_red_never_leaves_and_amber_reaches_only_partners(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("public"), auth=auth())
    red, amber, green = (
        indicator("203.0.113.1", tlp=Tlp.RED),
        indicator("203.0.113.2", tlp=Tlp.AMBER),
        indicator("203.0.113.3", tlp=Tlp.GREEN),
    )
    assert collection.add_objects({"objects": [red, amber, green]}).success_count == 3

    def visible(token: str) -> set[str]:
        objects = Collection(taxii.collection_url("public"), auth=auth(token)).get_objects().get("objects", [])
        return {o["id"] for o in objects}

    assert visible("reader-token") == {green["id"]}
    assert visible("partner-token") == {green["id"], amber["id"]}
    assert red["id"] not in visible("writer-token")
    red_url = taxii.collection_url("public") + f"objects/{red['id']}/"
    assert httpx.get(red_url, headers=raw("writer-token")).status_code == 404


def test_the_server_speaks_https_when_given_a_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override a session's own CA file; the test trusts only its own.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    store = IntelStore.open(tmp_path / "tls.db")
    store.create_collection("TLS", alias="tls")
    app = create_taxii_app(tmp_path / "tls.db", {"t": Principal("t", frozenset({"*"}))}, store=store)
    with BackgroundServer(app, tls=TlsFiles(cert, key)) as server:
        assert server.url.startswith("https://")
        with ApiRoot(f"{server.url}/taxii2/api/", auth=TokenAuth("t"), verify=str(cert)) as root:
            assert [c.alias for c in root.collections] == ["tls"]
    store.close()


def test_taxii_tokens_are_checked_for_every_principal_in_the_table() -> None:
    assert {p.name for p in TOKENS.values()} >= {"reader", "writer", "jpcert"}


def test_versions_and_object_endpoints_page_with_limit_and_next(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("intel"), auth=auth())
    ident = "indicator--2b3c4d5e-6f70-4819-9a2b-3c4d5e6f7081"
    stamps = [f"2024-07-0{d}T00:00:00.000Z" for d in range(1, 6)]
    collection.add_objects({"objects": [indicator("192.0.2.200", modified=m, ident=ident) for m in stamps]})
    url = taxii.collection_url("intel") + f"objects/{ident}/"
    versions: list[str] = []
    params = {"limit": "2"}
    while True:
        body = httpx.get(url + "versions/", headers=raw(), params=params).json()
        versions.extend(body["versions"])
        if not body["more"]:
            break
        params = {"limit": "2", "next": body["next"]}
    assert versions == [s.replace(".000Z", ".000000Z") for s in stamps]
    first_page = httpx.get(url, headers=raw(), params={"match[version]": "all", "limit": "3"})
    assert first_page.json()["more"] is True and len(first_page.json()["objects"]) == 3
    after = first_page.headers["X-TAXII-Date-Added-Last"]
    rest = httpx.get(url, headers=raw(), params={"match[version]": "all", "added_after": after})
    assert [o["modified"] for o in rest.json()["objects"]] == stamps[3:]


def test_methods_a_resource_does_not_have_are_refused_in_taxii_form(taxii: Taxii) -> None:
    response = httpx.put(taxii.collection_url("intel") + "objects/", headers=raw(), content=b"{}")
    assert response.status_code == 405
    assert response.headers["content-type"] == TAXII_MEDIA_TYPE


def test_an_object_with_an_unknown_marking_is_held_back_until_its_definition_arrives(taxii: Taxii) -> None:
    public = taxii.store.require_collection("public")
    statement_id = "marking-definition--0b5f2a8c-3d4e-4f60-8a7b-9c0d1e2f3a4b"
    obj = {**indicator("203.0.113.250"), "object_marking_refs": [statement_id]}
    taxii.store.add_objects(public.id, [obj])
    url = taxii.collection_url("public") + f"objects/{obj['id']}/"
    assert httpx.get(url, headers=raw("partner-token")).status_code == 404
    statement = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": statement_id,
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": "Copyright Example CSIRT"},
    }
    taxii.store.add_objects(public.id, [statement])
    assert httpx.get(url, headers=raw("reader-token")).status_code == 200


def test_without_a_spec_version_filter_only_the_latest_spec_version_of_an_object_is_served(taxii: Taxii) -> None:
    collection = Collection(taxii.collection_url("inbox"), auth=auth())
    ident = "indicator--5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f"
    stix20 = {
        "type": "indicator",
        "id": ident,
        "created": "2017-01-01T00:00:00.000Z",
        "modified": "2017-01-01T00:00:00.000Z",
        "labels": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '192.0.2.33']",
        "valid_from": "2017-01-01T00:00:00Z",
    }
    stix21 = indicator("192.0.2.33", modified="2018-01-01T00:00:00.000Z", ident=ident)
    collection.add_objects({"objects": [stix20, stix21]})
    everything = collection.get_objects(id=ident, version="all")["objects"]
    assert [o["modified"] for o in everything] == ["2018-01-01T00:00:00.000Z"]
    old = collection.get_objects(id=ident, version="all", spec_version="2.0")["objects"]
    assert [o["modified"] for o in old] == ["2017-01-01T00:00:00.000Z"]
    manifest = collection.get_manifest(id=ident, version="all", spec_version="2.0,2.1")["objects"]
    assert [m["media_type"] for m in manifest] == [
        "application/stix+json;version=2.0",
        "application/stix+json;version=2.1",
    ]
