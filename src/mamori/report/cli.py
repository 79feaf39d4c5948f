"""``mamori report INCIDENT_ID``: write an incident's report as HTML or PDF, in Japanese or English."""

from __future__ import annotations

from pathlib import Path

import click

from mamori.cli import run_command
from mamori.errors import MamoriError


def write_report(incident_id: int, lang: str, output_format: str, output: Path, data_dir: Path | None,
                 config: Path | None, time_zone: str | None) -> Path:
    """Build the report of ``incident_id`` from the service's data folder and write it to ``output``."""
    from mamori.config import load_settings
    from mamori.report import build, render_html, render_pdf
    from mamori.report.locale import check_language
    from mamori.report.locale import time_zone as check_zone
    from mamori.store.db import check_service_records, read_service_records
    from mamori.store.lake import Lake

    check_language(lang)
    check_zone(time_zone, lang)
    settings = load_settings(config, data_dir=data_dir)
    check_service_records(settings.data_dir, settings.database_url)
    lake = Lake(settings.data_dir / "lake") if (settings.data_dir / "lake").is_dir() else None
    with read_service_records(settings.db_url) as session:
        data = build(session, lake, incident_id, lang, time_zone)
    if output_format == "pdf":
        content = render_pdf(data, lang, time_zone)
    else:
        content = render_html(data, lang, time_zone).encode("utf-8")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        partial.write_bytes(content)
        partial.replace(output)
    except OSError as exc:
        raise MamoriError(f"cannot write the report: {exc.strerror}", where=str(output)) from exc
    return output


@click.command()
@click.argument("incident_id", type=int)
@click.option("--lang", type=click.Choice(["ja", "en"]), default="en", show_default=True, help="Report language.")
@click.option("--format", "output_format", type=click.Choice(["html", "pdf"]), default="html", show_default=True,
              help="HTML (self-contained page) or PDF.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="File to write (default incident-<id>-<lang>.<format>).")
@click.option("--tz", "time_zone", help="Time zone of the times shown (default: Asia/Tokyo for ja, UTC for en).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Data folder of `mamori serve` (default ./mamori-data).")
@click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="TOML configuration file (MAMORI_* variables override it).")
def report(incident_id: int, lang: str, output_format: str, output: Path | None, time_zone: str | None,
           data_dir: Path | None, config: Path | None) -> None:
    """Write an incident report (summary, timeline, entities, ATT&CK mapping, actions, evidence)."""

    def run() -> int:
        target = output or Path(f"incident-{incident_id}-{lang}.{output_format}")
        written = write_report(incident_id, lang, output_format, target, data_dir, config, time_zone)
        click.echo(f"report of incident {incident_id} ({lang}, {output_format}) written to {written}")
        return 0

    run_command(run)


__all__ = ["report", "write_report"]
