"""Saving detector state to a directory so models and baselines survive a restart.

Each detector gives its baselines as Polars frames (written as Parquet) and its settings as a JSON
object; every file is written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl


def write_frames(directory: Path, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
    """Write ``frames`` as Parquet files and ``settings`` as ``settings.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        tmp = directory / f".{name}.parquet.tmp"
        frame.write_parquet(tmp)
        tmp.replace(directory / f"{name}.parquet")
    tmp = directory / ".settings.json.tmp"
    tmp.write_text(json.dumps(settings, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(directory / "settings.json")


def read_frames(directory: Path) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Read what :func:`write_frames` wrote."""
    if not (directory / "settings.json").exists():
        raise FileNotFoundError(f"{directory}: no saved detector state (settings.json is missing)")
    frames = {p.name.removesuffix(".parquet"): pl.read_parquet(p) for p in sorted(directory.glob("*.parquet"))}
    settings: dict[str, Any] = json.loads((directory / "settings.json").read_text(encoding="utf-8"))
    return frames, settings
