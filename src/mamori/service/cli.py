"""``mamori serve``, ``mamori users`` and ``mamori tokens``; ``store_hunt`` for ``mamori hunt --store``."""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from mamori.cli import run_command
from mamori.config import Settings, load_settings
from mamori.errors import MamoriError
from mamori.store.records import ROLES
from mamori.web.cli import passwd


def _settings(config: Path | None, **overrides: Any) -> Settings:
    return load_settings(config, **overrides)


config_option = click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                             help="TOML configuration file (MAMORI_* variables override it).")
data_option = click.option("--data-dir", type=click.Path(path_type=Path), help="Data folder (default ./mamori-data).")


@click.command()
@config_option
@data_option
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="API port (default 8844; 0 picks a free one).")
@click.option("--syslog-tcp-port", type=int, help="Syslog TCP port (default 5514; -1 off).")
@click.option("--syslog-udp-port", type=int, help="Syslog UDP port (default 5514; -1 off).")
@click.option("--syslog-tls-port", type=int, help="Syslog TLS port (RFC 5425; needs tls_cert/tls_key).")
@click.option("--rules", "rules", multiple=True, type=click.Path(path_type=Path), help="Rule folder (repeatable).")
@click.option("--tail", "tail", multiple=True, type=click.Path(path_type=Path), help="File or folder to follow.")
def serve(config: Path | None, data_dir: Path | None, host: str | None, port: int | None,
          syslog_tcp_port: int | None, syslog_udp_port: int | None, syslog_tls_port: int | None,
          rules: tuple[Path, ...], tail: tuple[Path, ...]) -> None:
    """Run the SOC service: ingest (syslog, HTTP, files), store, detect in real time, serve the API."""

    def run() -> int:
        import logging

        import uvicorn

        from mamori.api.app import create_app
        from mamori.api.auth import bootstrap_admin
        from mamori.service.runtime import Service

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)
        settings = _settings(config, data_dir=data_dir, host=host, port=port, syslog_tcp_port=syslog_tcp_port,
                             syslog_udp_port=syslog_udp_port, syslog_tls_port=syslog_tls_port,
                             rules=list(rules) or None, tail=list(tail) or None)
        if not settings.rules:
            from mamori.detect.sigma.rulestore import store_dir

            if store_dir().exists():
                settings = _settings(config, data_dir=data_dir, host=host, port=port,
                                     syslog_tcp_port=syslog_tcp_port, syslog_udp_port=syslog_udp_port,
                                     syslog_tls_port=syslog_tls_port, rules=[store_dir()], tail=list(tail) or None)
        service = Service(settings)
        token = bootstrap_admin(service.sessions)
        listener = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((settings.host, settings.port))
        except OSError as exc:
            raise MamoriError(f"cannot listen on {settings.host}:{settings.port}: {exc}", where="port",
                              hint="choose another port with --port or in the config") from exc
        api_port = listener.getsockname()[1]
        def announce() -> None:
            service.write_ports(api_port)
            url = f"http://{settings.host}:{api_port}"
            click.echo(f"Mamori is running. Console: {url}/console/  API: {url}/api/v1  OpenAPI: {url}/docs  "
                       f"metrics: {url}/metrics")
            click.echo(f"Syslog: {', '.join(f'{k}={v}' for k, v in service.ports.items() if k != 'api')}; "
                       f"data: {settings.data_dir.resolve()}; rules: {len(service.stage.rules())}")
            if token and settings.print_token:
                click.echo(f"First admin token (shown once, keep it): {token}")
            sys.stdout.flush()

        app = create_app(settings, service, on_started=announce)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
        server.run(sockets=[listener])
        return 0

    run_command(run)


@click.group()
def users() -> None:
    """Manage users (admin, analyst, viewer; ingest for log shippers, who may only send events)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer",
              show_default=True, help="ingest: may send events (HTTP ingest) and nothing else.")
@click.option("--token/--no-token", default=True, help="Also issue a first token.")
@config_option
@data_option
def users_add(name: str, role: str, token: bool, config: Path | None, data_dir: Path | None) -> None:
    """Add a user (and print a first token for it)."""

    def run() -> int:
        from mamori.api.auth import audit, create_user, issue_token
        from mamori.service.runtime import open_records

        _, sessions = open_records(_settings(config, data_dir=data_dir))
        with sessions.begin() as session:
            create_user(session, name, role)
            audit(session, "cli", "user.add", f"user {name}", role=role)
            secret = issue_token(session, name, "first token") if token else None
        click.echo(f"user {name} ({role}) added")
        if secret:
            click.echo(f"token (shown once): {secret}")
        return 0

    run_command(run)


users.add_command(passwd)


@users.command("list")
@config_option
@data_option
def users_list(config: Path | None, data_dir: Path | None) -> None:
    """List users and their roles."""

    def run() -> int:
        from mamori.service.runtime import open_records
        from mamori.store.records import User

        _, sessions = open_records(_settings(config, data_dir=data_dir))
        with sessions() as session:
            for user in session.scalars(select(User).order_by(User.name)):
                click.echo(f"{user.name}\t{user.role}\t{'disabled' if user.disabled else 'active'}")
        return 0

    run_command(run)


@users.command("disable")
@click.argument("name")
@config_option
@data_option
def users_disable(name: str, config: Path | None, data_dir: Path | None) -> None:
    """Disable a user: every token of theirs stops working."""

    def run() -> int:
        from mamori.api.auth import audit
        from mamori.service.runtime import open_records
        from mamori.store.records import User

        _, sessions = open_records(_settings(config, data_dir=data_dir))
        with sessions.begin() as session:
            user = session.scalars(select(User).where(User.name == name)).first()
            if user is None:
                raise MamoriError(f"no user {name!r}", where="users disable")
            user.disabled = True
            audit(session, "cli", "user.disable", f"user {name}")
        click.echo(f"user {name} disabled")
        return 0

    run_command(run)


@click.group()
def tokens() -> None:
    """Manage API tokens (stored hashed; shown once)."""


@tokens.command("create")
@click.option("--user", "user_name", required=True)
@click.option("--name", "token_name", default="token", show_default=True)
@click.option("--expires-days", type=click.FloatRange(min=0, min_open=True),
              help="The token stops working after this many days (default: until revoked).")
@config_option
@data_option
def tokens_create(user_name: str, token_name: str, expires_days: float | None, config: Path | None,
                  data_dir: Path | None) -> None:
    """Issue a token for a user and print it once."""

    def run() -> int:
        from datetime import UTC, timedelta

        from mamori.api.auth import audit, issue_token
        from mamori.service.runtime import open_records

        expires_at = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
        _, sessions = open_records(_settings(config, data_dir=data_dir))
        with sessions.begin() as session:
            secret = issue_token(session, user_name, token_name, expires_at)
            audit(session, "cli", "token.create", f"user {user_name}", name=token_name,
                  expires_at=expires_at.isoformat() if expires_at else None)
        click.echo(secret)
        return 0

    run_command(run)


@tokens.command("list")
@config_option
@data_option
def tokens_list(config: Path | None, data_dir: Path | None) -> None:
    """List tokens (prefix, user, name, state, created, expires); the secrets themselves are not stored."""

    def run() -> int:
        from datetime import UTC

        from mamori.api.auth import expired
        from mamori.service.runtime import open_records
        from mamori.store.records import ApiToken, User

        _, sessions = open_records(_settings(config, data_dir=data_dir))
        with sessions() as session:
            rows = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)).all()
            now = datetime.now(UTC)
            for token, user in rows:
                state = "revoked" if token.revoked else "expired" if expired(token.expires_at, now) else "active"
                expires = f"\texpires {token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else ""
                click.echo(f"{token.prefix}…\t{user.name}\t{token.name}\t{state}\t{token.created_at:%Y-%m-%d}{expires}")
        return 0

    run_command(run)


@tokens.command("revoke")
@click.argument("prefix")
@config_option
@data_option
def tokens_revoke(prefix: str, config: Path | None, data_dir: Path | None) -> None:
    """Revoke tokens by their shown prefix or their name."""

    def run() -> int:
        from mamori.api.auth import audit, revoke_token
        from mamori.service.runtime import open_records

        _, sessions = open_records(_settings(config, data_dir=data_dir))
        with sessions.begin() as session:
            count = revoke_token(session, prefix)
            audit(session, "cli", "token.revoke", prefix, count=count)
        if not count:
            raise MamoriError(f"no token matches {prefix!r}", where="tokens revoke", hint="see `mamori tokens list`")
        click.echo(f"{count} token(s) revoked")
        return 0

    run_command(run)


def store_hunt(rule_paths: list[Path], data_dir: Path | None = None, config: Path | None = None,
               since: datetime | None = None, until: datetime | None = None,
               placeholders: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """For ``mamori hunt --store``: run rules over the service's stored events; returns hit records
    (rule_id, rule_title, level, uid, time, host, source, explanation)."""
    from mamori.service.retrohunt import hunt_store

    settings = _settings(config, data_dir=data_dir)
    if not (settings.data_dir / "lake").exists():
        raise MamoriError("no stored events", where=str(settings.data_dir),
                          hint="point --data-dir at the folder `mamori serve` uses")
    if placeholders is None and settings.placeholders is not None:
        from mamori.detect.sigma.placeholders import read_placeholders

        placeholders = read_placeholders(settings.placeholders)
    return hunt_store(settings.data_dir, rule_paths, since, until, placeholders=placeholders)


__all__ = ["serve", "store_hunt", "tokens", "users"]
