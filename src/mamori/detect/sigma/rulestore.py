"""The local rule store that ``mamori rules update`` fills: a folder of rule files, replaced atomically.

Sources: a URL (default: SigmaHQ's release package of all rules), a local zip or a local folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from mamori.errors import MamoriError

DEFAULT_URL = "https://github.com/SigmaHQ/sigma/releases/latest/download/sigma_all_rules.zip"
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024


def store_dir() -> Path:
    """Where the rule store lives: ``$MAMORI_HOME/rules``, else ``~/.local/share/mamori/rules``."""
    home = os.environ.get("MAMORI_HOME")
    base = Path(home) if home else Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mamori"
    return base / "rules"


def update_store(source: str = DEFAULT_URL, target: Path | None = None, timeout: float = 60.0) -> tuple[Path, int]:
    """Replace the rule store with the rules from ``source``; return the folder and the rule-file count."""
    target = target or store_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".rules-", dir=target.parent))
    try:
        local = Path(source)
        if local.is_dir():
            _copy_rules(local, staging)
        elif local.is_file():
            _extract(local, staging)
        elif source.startswith(("http://", "https://")):
            archive = staging / "download.zip"
            _download(source, archive, timeout)
            _extract(archive, staging / "rules")
            archive.unlink()
        else:
            raise MamoriError(f"{source}: not a URL, zip or folder", hint="give a rule folder, a .zip or a URL")
        count = sum(1 for p in staging.rglob("*") if p.suffix.lower() in {".yml", ".yaml"})
        if count == 0:
            raise MamoriError(f"{source}: holds no rule files (.yml)")
        old = target.with_name(target.name + ".old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return target, count
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _copy_rules(source: Path, destination: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file() and path.suffix.lower() in {".yml", ".yaml"}:
            out = destination / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)


def _extract(archive: Path, destination: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                name = Path(member.filename)
                if member.is_dir() or name.suffix.lower() not in {".yml", ".yaml"}:
                    continue
                if name.is_absolute() or ".." in name.parts:
                    raise MamoriError(f"{archive}: unsafe path {member.filename!r} in archive")
                out = destination / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(bundle.read(member))
    except zipfile.BadZipFile as exc:
        raise MamoriError(f"{archive}: not a valid zip file ({exc})") from exc


def _download(url: str, destination: Path, timeout: float) -> None:
    import urllib.request  # here: every `mamori hunt` imports this module for the store's path only

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, destination.open("wb") as out:
            total = 0
            while chunk := response.read(1 << 20):
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise MamoriError(f"{url}: download larger than {MAX_DOWNLOAD_BYTES} bytes")
                out.write(chunk)
    except OSError as exc:
        raise MamoriError(f"{url}: download failed ({exc})", hint="give a local zip or folder instead") from exc
