"""Threat intelligence: the STIX 2.1 store, the TAXII 2.1 server, feeds, IOC matching, TLP and
APPI-safe sharing. The names below are the public API; the modules behind them are private.

Names are imported on first use, so ``mamori --help`` does not pay for FastAPI, SQLAlchemy and Polars.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mamori.intel.errors import IntelError, PatternNotSupported
    from mamori.intel.matcher import IndicatorIndex, IndicatorInput, Matcher
    from mamori.intel.principal import Principal, bearer_authorizer
    from mamori.intel.redact import RedactionPolicy, Redactor
    from mamori.intel.retrohunt import retro_hunt
    from mamori.intel.share import prepare_share, publish_share
    from mamori.intel.store import IntelStore, Reader
    from mamori.intel.taxii_server import build_taxii_router, create_taxii_app
    from mamori.intel.tlp import Tlp

_HOMES = {
    "IndicatorIndex": "matcher",
    "IndicatorInput": "matcher",
    "IntelError": "errors",
    "IntelStore": "store",
    "Matcher": "matcher",
    "PatternNotSupported": "errors",
    "Principal": "principal",
    "Reader": "store",
    "RedactionPolicy": "redact",
    "Redactor": "redact",
    "Tlp": "tlp",
    "bearer_authorizer": "principal",
    "build_taxii_router": "taxii_server",
    "create_taxii_app": "taxii_server",
    "prepare_share": "share",
    "publish_share": "share",
    "retro_hunt": "retrohunt",
}

__all__ = [
    "IndicatorIndex",
    "IndicatorInput",
    "IntelError",
    "IntelStore",
    "Matcher",
    "PatternNotSupported",
    "Principal",
    "Reader",
    "RedactionPolicy",
    "Redactor",
    "Tlp",
    "bearer_authorizer",
    "build_taxii_router",
    "create_taxii_app",
    "prepare_share",
    "publish_share",
    "retro_hunt",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mamori.intel' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mamori.intel.{home}"), name)
