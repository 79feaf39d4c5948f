"""Who calls the TAXII server: a principal with per-collection read and write rights.

The SOC service supplies its own ``authorize(request) -> Principal``; ``bearer_authorizer`` is the
simple token table used stand-alone and in tests.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException, Request

from mamori.intel.store import CollectionInfo, Reader

ALL = "*"


@dataclass(frozen=True)
class Principal:
    """A caller: its name, the collections (ids or aliases, ``*`` for all) it may read and write,
    and whether it is a named TLP partner (who may receive TLP:AMBER)."""

    name: str
    can_read: frozenset[str] = frozenset()
    can_write: frozenset[str] = frozenset()
    partner: bool = False

    def may_read(self, collection: CollectionInfo) -> bool:
        """Tell whether this principal may read objects of a collection."""
        return _granted(self.can_read, collection)

    def may_write(self, collection: CollectionInfo) -> bool:
        """Tell whether this principal may add or delete objects of a collection."""
        return _granted(self.can_write, collection)

    @property
    def reader(self) -> Reader:
        """This principal as a reader, for TLP enforcement in the store."""
        return Reader(name=self.name, partner=self.partner)


def _granted(rights: frozenset[str], collection: CollectionInfo) -> bool:
    return ALL in rights or collection.id in rights or (collection.alias is not None and collection.alias in rights)


Authorizer = Callable[[Request], Principal]


def bearer_authorizer(tokens: Mapping[str, Principal]) -> Authorizer:
    """An authorizer that maps ``Authorization: Bearer <token>`` (or ``Token <token>``) to a principal.

    Tokens are compared in constant time; a missing or unknown token raises 401.
    """
    table = dict(tokens)

    def authorize(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() in ("bearer", "token") and token:
            for known, principal in table.items():
                if hmac.compare_digest(known.encode(), token.strip().encode()):
                    return principal
        raise HTTPException(
            status_code=401,
            detail="a valid API token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )

    return authorize
