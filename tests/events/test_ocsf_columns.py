"""The names of the OCSF columns the shipped tables add, as the rest of Mamori knows them."""

from __future__ import annotations

from mamori.events.ocsf import ocsf_column_names
from mamori.events.schema import OCSF_TOP_LEVEL


def test_every_undotted_name_the_tables_fill_is_a_known_ocsf_top_level_attribute() -> None:
    undotted = {name for name in ocsf_column_names() if "." not in name}
    assert undotted <= OCSF_TOP_LEVEL, sorted(undotted - OCSF_TOP_LEVEL)
