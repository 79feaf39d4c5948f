"""TAXII 2.1 inside ``mamori serve``: the threat-intel room's router, behind the service's API tokens.

Rights follow the caller's role: every role reads the collections it is shown; analysts and admins
write. TLP:AMBER goes only to the users named in ``taxii_partners``; TLP:RED never leaves (the intel
store enforces both on every response).
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request

from mamori.api.auth import TokenCheck
from mamori.config import Settings
from mamori.intel.principal import Principal as TaxiiPrincipal
from mamori.intel.store import IntelStore
from mamori.intel.taxii_server import build_taxii_router

WRITERS = {"analyst", "admin"}


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in {"bearer", "token"} and value.strip():
        return value.strip()
    return request.headers.get("x-mamori-token")


def mount_taxii(app: FastAPI, settings: Settings, tokens: TokenCheck) -> IntelStore:
    """Serve TAXII 2.1 under ``/taxii2/`` from the intel store in the data folder."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = IntelStore.open(settings.data_dir / "intel.db")
    # a fresh service offers two collections: partners' intelligence in, and ours out
    store.create_collection("Shared with us", alias="inbox", description="Intelligence partners publish to us")
    store.create_collection("Shared by us", alias="outgoing", outgoing=True,
                            description="Mamori's findings for partners (redacted, TLP enforced)")
    partners = {name.strip() for name in settings.taxii_partners.split(",") if name.strip()}

    def authorize(request: Request) -> TaxiiPrincipal:
        token = _token(request)
        caller = tokens.lookup(token) if token else None
        if caller is None:
            raise HTTPException(401, "a valid API token is required", {"WWW-Authenticate": "Bearer"})
        write = frozenset({"*"}) if caller.role in WRITERS else frozenset()
        return TaxiiPrincipal(caller.user, frozenset({"*"}), write, caller.user in partners)

    app.include_router(build_taxii_router(store, authorize))
    app.state.intel = store
    return store
