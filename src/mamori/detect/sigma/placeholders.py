"""Values for the ``|expand`` placeholders of a rule set (``%Workstations%``, ``%dc_machine_accounts%``),
read from a YAML file the organisation keeps.

SigmaHQ's ``rules-placeholder`` folder ships detection templates whose lists (domain controllers,
administrators' workstations, legitimate countries) only the organisation knows; without values such a
rule is refused with the placeholder's name. The file is a mapping of placeholder name (with or without
the ``%`` signs) to one value or a list of values:

.. code-block:: yaml

    Admins_Workstations: [ADM-WS01, ADM-WS02]
    dc_machine_accounts: ["DC01$", "DC02$"]
    userdomain: CORP
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mamori.errors import MamoriError

Placeholders = dict[str, tuple[str, ...]]


def read_placeholders(path: Path) -> Placeholders:
    """Placeholder name -> its values, from the YAML file at ``path``; a clear error naming the file and
    the entry when it is not a mapping of names to scalars or lists of scalars."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MamoriError(f"cannot read the placeholder file: {exc}", where=str(path)) from exc
    except yaml.YAMLError as exc:
        raise MamoriError(f"the placeholder file is not valid YAML: {exc}", where=str(path)) from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise MamoriError("the placeholder file must map placeholder names to values", where=str(path))
    values: Placeholders = {}
    for name, value in document.items():
        key = str(name).strip().strip("%")
        items = value if isinstance(value, list) else [value]
        if not key or any(item is None or isinstance(item, dict | list) for item in items):
            raise MamoriError(f"placeholder {name!r} must have a value or a list of values",
                              where=str(path))
        values[key] = tuple(_text(item) for item in items)
    return values


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
