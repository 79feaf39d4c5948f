"""Reader for the NSL-KDD connection records (41 features, a label and a difficulty score)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

SYMBOLIC = ("protocol_type", "service", "flag")


def field_names(folder: Path) -> list[str]:
    """The 41 feature names, in file order, from the dataset's ``Field Names.csv``."""
    lines = (folder / "Field Names.csv").read_text(encoding="utf-8").splitlines()
    return [line.split(",")[0].strip() for line in lines if line.strip()]


def read_nsl_kdd(folder: Path, name: str) -> pl.DataFrame:
    """Read one NSL-KDD file into a frame with named features, ``label`` and ``difficulty``."""
    columns = [*field_names(folder), "label", "difficulty"]
    return pl.read_csv(folder / name, has_header=False, new_columns=columns)


def numeric_fields(folder: Path) -> list[str]:
    """The continuous features (everything but protocol, service and flag)."""
    return [c for c in field_names(folder) if c not in SYMBOLIC]
