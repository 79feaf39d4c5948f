"""``mamori anomaly``: the behaviour baselines of a data folder (what `mamori serve` learned): show
them, or build them again from the stored events."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mamori.cli import run_command

if TYPE_CHECKING:
    from mamori.service.anomaly_worker import AnomalyWorker


def _worker(data_dir: Path | None, config: Path | None) -> AnomalyWorker:
    from mamori.config import load_settings
    from mamori.service.anomaly_worker import AnomalyWorker, anomaly_settings
    from mamori.store.db import check_service_records, make_engine, session_factory
    from mamori.store.lake import Lake

    settings = load_settings(config, data_dir=data_dir)
    check_service_records(settings.data_dir, settings.database_url)
    sessions = session_factory(make_engine(settings.db_url))
    return AnomalyWorker(Lake(settings.data_dir / "lake"), sessions, settings.data_dir / "anomaly",
                         anomaly_settings(settings))


DATA_DIR = click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
                        help="Data folder of `mamori serve` (default ./mamori-data).")
CONFIG = click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                      help="TOML configuration file (MAMORI_* variables override it).")


@click.group()
def anomaly() -> None:
    """Behaviour baselines and anomaly detection (UEBA) over the events `mamori serve` stored."""


@anomaly.command()
@DATA_DIR
@CONFIG
def status(data_dir: Path | None, config: Path | None) -> None:
    """Show when the baselines were built, how far the stored events were scored, the detectors and the
    analysts' benign verdicts (JSON)."""

    def run() -> int:
        worker = _worker(data_dir, config)
        click.echo(json.dumps(worker.status(), ensure_ascii=False, indent=1))
        return 0

    run_command(run)


@anomaly.command()
@DATA_DIR
@CONFIG
def rebuild(data_dir: Path | None, config: Path | None) -> None:
    """Build the baselines again from the stored events of the baseline window, in a data folder no
    `mamori serve` is running on (a running service is asked with POST /api/v1/anomaly/rebuild)."""

    def run() -> int:
        from mamori.config import load_settings
        from mamori.errors import MamoriError
        from mamori.service.launch import running_service

        folder = load_settings(config, data_dir=data_dir).data_dir
        live = running_service(folder)
        if live is not None:
            raise MamoriError(f"mamori serve (pid {live['pid']}) is running on {folder}: it would overwrite a "
                              "rebuild made here with its own baselines",
                              hint="ask the service instead: POST /api/v1/anomaly/rebuild (admin token), "
                                   "or stop it first")
        worker = _worker(data_dir, config)
        started = time.perf_counter()
        if not worker.rebuild():
            click.echo("too little stored history for a baseline (a day at least); nothing changed")
            return 1
        click.echo(f"baselines built in {time.perf_counter() - started:.1f} s; scoring goes on from spool entry "
                   f"{worker.cursor}")
        return 0

    run_command(run)


__all__ = ["anomaly"]
