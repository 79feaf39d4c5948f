"""``mamori users passwd NAME``: set a user's console password (asked twice, or read from standard input)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mamori.errors import MamoriError


@click.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="TOML configuration file (MAMORI_* variables override it).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data folder (default ./mamori-data).")
def passwd(name: str, password_stdin: bool, config: Path | None, data_dir: Path | None) -> None:
    """Set the console password of user NAME (it also unlocks the account and ends its open sessions)."""
    from mamori.api.auth import audit
    from mamori.config import load_settings
    from mamori.service.runtime import open_records
    from mamori.web.accounts import set_password

    try:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt("New console password", hide_input=True, confirmation_prompt=True)
        engine, sessions = open_records(load_settings(config, data_dir=data_dir))
        try:
            with sessions.begin() as session:
                set_password(session, name, password)
                audit(session, "cli", "user.passwd", f"user {name}")
        finally:
            engine.dispose()
    except MamoriError as exc:
        click.echo(f"mamori: error: {exc.where + ': ' if exc.where else ''}{exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    click.echo(f"console password of {name} set")
