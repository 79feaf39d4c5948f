"""Traffic Light Protocol 2.0: read the TLP of a STIX object and decide who may receive it.

TLP:RED never leaves Mamori; TLP:AMBER and TLP:AMBER+STRICT go only to partner principals (and, when
an object names its audience, only to those partners); TLP:GREEN and TLP:CLEAR go to any reader.
TLP 1.0 markings (WHITE, GREEN, AMBER, RED) as built into STIX 2.1 are read as their 2.0 equivalents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any

from mamori.intel.errors import IntelError


class Tlp(IntEnum):
    """TLP levels, ordered from the most to the least shareable."""

    CLEAR = 0
    GREEN = 1
    AMBER = 2
    AMBER_STRICT = 3
    RED = 4

    @property
    def label(self) -> str:
        """The level as written on a document, e.g. ``TLP:AMBER+STRICT``."""
        return "TLP:" + self.name.replace("_", "+")


# Marking definitions of TLP 2.0 (OASIS extension) and TLP 1.0 (built into STIX 2.1).
TLP2_MARKING_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP1_MARKING_IDS: dict[str, Tlp] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.CLEAR,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.RED,
}
MARKING_LEVELS: dict[str, Tlp] = {**{v: k for k, v in TLP2_MARKING_IDS.items()}, **_TLP1_MARKING_IDS}
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

_NAMES: dict[str, Tlp] = {
    "clear": Tlp.CLEAR,
    "white": Tlp.CLEAR,
    "green": Tlp.GREEN,
    "amber": Tlp.AMBER,
    "amber+strict": Tlp.AMBER_STRICT,
    "amber_strict": Tlp.AMBER_STRICT,
    "red": Tlp.RED,
}


def parse_tlp(text: str, *, where: str = "tlp") -> Tlp:
    """Read a TLP level from text such as ``amber``, ``TLP:AMBER+STRICT`` or ``white``."""
    key = text.strip().lower().removeprefix("tlp:").strip()
    try:
        return _NAMES[key]
    except KeyError:
        raise IntelError(
            f"unknown TLP level {text!r}", where=where, hint="use clear, green, amber, amber+strict or red"
        ) from None


def marking_refs(obj: Mapping[str, Any]) -> list[str]:
    """All marking-definition ids an object carries, at object level and in granular markings."""
    refs = [str(ref) for ref in obj.get("object_marking_refs", []) or []]
    for granular in obj.get("granular_markings", []) or []:
        if isinstance(granular, Mapping) and granular.get("marking_ref"):
            refs.append(str(granular["marking_ref"]))
    return refs


def level_of_marking_definition(obj: Mapping[str, Any]) -> Tlp | None:
    """The TLP level a marking-definition object defines, or None if it is not a TLP marking."""
    if obj.get("id") in MARKING_LEVELS:
        return MARKING_LEVELS[str(obj["id"])]
    definition = obj.get("definition")
    if obj.get("definition_type") == "tlp" and isinstance(definition, Mapping) and "tlp" in definition:
        return _NAMES.get(str(definition["tlp"]).lower())
    name = str(obj.get("name", ""))
    if name.upper().startswith("TLP:"):
        return _NAMES.get(name[4:].lower())
    return None


def tlp_of(
    obj: Mapping[str, Any],
    default: Tlp,
    known: Mapping[str, Tlp | None] | None = None,
    *,
    unknown: Tlp | None = None,
) -> Tlp:
    """The most restrictive TLP level marked on an object, or ``default`` if it carries none.

    ``known`` maps marking-definition ids seen in the store to their TLP level (None for markings
    that are not TLP, such as statements). A reference to a definition not seen yet counts as
    ``unknown`` when given: the store passes TLP:RED, so nothing leaves before its marking is known.
    """
    if obj.get("type") == "marking-definition" and level_of_marking_definition(obj) is not None:
        return Tlp.CLEAR  # the definition of a TLP level is public by nature
    table: dict[str, Tlp | None] = {**(known or {}), **MARKING_LEVELS}
    levels: list[Tlp] = []
    for ref in marking_refs(obj):
        if ref in table:
            level = table[ref]
            if level is not None:
                levels.append(level)
        elif unknown is not None:
            levels.append(unknown)
    return max(levels) if levels else default


def may_receive(level: Tlp, *, partner: bool, principal: str, audience: Iterable[str] = ()) -> bool:
    """Tell whether a principal may receive an object at ``level`` addressed to ``audience``.

    TLP:RED: never. AMBER and AMBER+STRICT: only partners, and only named ones when an audience is set.
    GREEN and CLEAR: anyone allowed to read the collection.
    """
    if level >= Tlp.RED:
        return False
    if level >= Tlp.AMBER:
        names = set(audience)
        return partner and (not names or principal in names)
    return True


def marking_for(level: Tlp) -> str:
    """The TLP 2.0 marking-definition id to put in ``object_marking_refs`` for a level."""
    return TLP2_MARKING_IDS[level]


def marking_definition(level: Tlp) -> dict[str, Any]:
    """The TLP 2.0 marking-definition object for a level, as published with the OASIS extension."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_MARKING_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": level.label,
        "extensions": {
            TLP2_EXTENSION_ID: {
                "extension_type": "property-extension",
                "tlp_2_0": level.name.lower().replace("_", "+"),
            }
        },
    }
