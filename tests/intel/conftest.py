"""Shared fixtures of the intel tests: a real TAXII server on a free local port, with known tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mamori.intel.principal import Principal
from mamori.intel.serve import BackgroundServer
from mamori.intel.store import IntelStore
from mamori.intel.taxii_server import create_taxii_app
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
    store.add_objects(
        big.id, [indicator(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}") for i in range(BIG_COUNT)]
    )
    app = create_taxii_app(db, TOKENS, store=store)
    with BackgroundServer(app) as server:
        yield Taxii(url=server.url, store=store)
    store.close()
