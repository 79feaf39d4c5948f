"""``mamori intel``: import, list, export threat intelligence, run feeds, and share with partners.

Heavy modules are imported inside the commands, so building the ``mamori`` command stays fast.

Thin wiring over the intel modules; errors become a message with where and a hint, and exit 2.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mamori.errors import MamoriError
from mamori.intel.feeds.config import KINDS
from mamori.intel.tlp import parse_tlp

if TYPE_CHECKING:
    from mamori.intel.feeds.runner import FeedRun
    from mamori.intel.share import AuditEntry
    from mamori.intel.store import IntelStore

DB_ENV = "MAMORI_INTEL_DB"
DEFAULT_DB = "mamori-data/intel.db"
F = TypeVar("F", bound=Callable[..., Any])

db_option = click.option(
    "--db",
    "db",
    envvar=DB_ENV,
    default=DEFAULT_DB,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"the intel store (SQLite path or database URL; env {DB_ENV})",
)


class _Failed(click.ClickException):
    """A MamoriError shown as ``Error: <where>: <message> (hint: ...)``, exiting with code 2."""

    exit_code = MamoriError.exit_code


def _friendly(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MamoriError as exc:
            raise _Failed(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _open(db: Path) -> IntelStore:
    from mamori.intel.store import IntelStore

    return IntelStore.open(db)


def _audit_line(entry: AuditEntry) -> str:
    return f"  redacted {entry.kind} in {entry.object_id}.{entry.field}: {entry.preview} -> {entry.replacement}"


def _report(run: FeedRun) -> None:
    if run.error:
        click.echo(f"{run.feed}: FAILED: {run.error}", err=True)
    else:
        click.echo(
            f"{run.feed}: fetched {run.fetched}, stored {run.stored}, failed {run.failed}, skipped {run.skipped}"
        )


@click.group(name="intel")
def intel() -> None:
    """Threat intelligence: STIX/TAXII feeds in, IOC store, TLP-safe sharing out."""


@intel.command(name="import")
@click.argument("location")
@click.option("--kind", type=click.Choice(sorted(KINDS)), default="stix", show_default=True)
@click.option("--name", help="the source name recorded on each indicator (default: the file name)")
@click.option("--tlp", default="green", show_default=True, help="TLP for objects that carry no marking")
@click.option("--confidence", type=click.IntRange(0, 100), default=50, show_default=True)
@click.option("--collection", default="feeds", show_default=True, help="local collection to store into")
@click.option("--value-type", default="", help="for lists: the kind of every value (url, domain, ip...)")
@click.option("--column", "columns", multiple=True, help="for CSV: role=column, e.g. value=URL")
@click.option("--taxii-collection", default="", help="for TAXII: the remote collection id")
@click.option("--token", envvar="MAMORI_INTEL_TOKEN", default="", help="bearer token for remote feeds")
@db_option
@_friendly
def import_(
    location: str,
    kind: str,
    name: str | None,
    tlp: str,
    confidence: int,
    collection: str,
    value_type: str,
    columns: tuple[str, ...],
    taxii_collection: str,
    token: str,
    db: Path,
) -> None:
    """Import a STIX bundle, a CSV or text IOC list, a MISP feed or a TAXII collection once."""
    from mamori.intel.feeds.config import FeedConfig
    from mamori.intel.feeds.runner import run_feed

    feed = FeedConfig(
        name=name or Path(location.rstrip("/")).name,
        kind=kind,
        location=location,
        confidence=confidence,
        tlp=parse_tlp(tlp, where="--tlp"),
        collection=taxii_collection,
        token=token,
        columns=dict(c.split("=", 1) for c in columns if "=" in c),
        value_type=value_type,
        target=collection,
    )
    store = _open(db)
    _report(run_feed(store, feed))


@intel.command(name="list")
@click.option("--collections", "show_collections", is_flag=True, help="list collections instead of indicators")
@click.option("--all", "show_all", is_flag=True, help="include expired and revoked indicators")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON lines")
@db_option
@_friendly
def list_(show_collections: bool, show_all: bool, limit: int, as_json: bool, db: Path) -> None:
    """List indicators in force (or collections) with confidence, TLP and sources."""
    store = _open(db)
    if show_collections:
        for info in store.collections():
            count = store.count(info.id)
            row: dict[str, Any] = {"id": info.id, "alias": info.alias, "title": info.title, "objects": count}
            row.update(default_tlp=info.default_tlp.label, outgoing=info.outgoing)
            line = f"{info.id}  {info.alias or '-'}  {info.title}  {count} objects  {info.default_tlp.label}"
            click.echo(json.dumps(row) if as_json else line)
        return
    records = store.indicators(include_inactive=show_all)
    for record in records[-limit:] if limit > 0 else records:
        item: dict[str, Any] = {
            "id": record.object_id,
            "pattern": record.pattern,
            "confidence": record.confidence,
        }
        item.update(tlp=record.tlp.label, sources=list(record.sources), valid_until=record.valid_until)
        sources = ", ".join(record.sources)
        text = f"{record.tlp.label:17} {record.confidence:3} {record.pattern}  [{sources}]"
        click.echo(json.dumps(item) if as_json else text)
    click.echo(f"{len(records)} indicator(s)", err=True)


@intel.command(name="export")
@click.option("--collection", required=True, help="collection id or alias")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="bundle file to write")
@click.option("--to", "recipient", default="export", show_default=True, help="who receives it (a partner name)")
@click.option("--partner", is_flag=True, help="the recipient is a named TLP partner (may receive AMBER)")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False), help="redaction policy YAML")
@db_option
@_friendly
def export(collection: str, out: Path, recipient: str, partner: bool, policy: str | None, db: Path) -> None:
    """Write a collection as a STIX bundle: TLP enforced for the recipient, personal data removed."""
    from mamori.intel.export import export_collection
    from mamori.intel.policy import load_policy
    from mamori.intel.store import Reader

    store = _open(db)
    result = export_collection(store, collection, Reader(recipient, partner), policy=load_policy(policy))
    out.write_text(json.dumps(result.bundle, ensure_ascii=False, indent=1), encoding="utf-8")
    click.echo(f"wrote {len(result.bundle['objects'])} object(s) to {out}; {len(result.audit)} redaction(s)")
    for entry in result.audit:
        click.echo(
            f"  redacted {entry.kind} in {entry.object_id}.{entry.field}: {entry.preview} -> {entry.replacement}"
        )


@intel.group(name="feeds")
def feeds() -> None:
    """Run the feeds defined in a YAML file (TAXII, MISP, CSV, text, STIX)."""


feeds_option = click.option(
    "--config", "config", type=click.Path(exists=True, dir_okay=False), required=True, help="feeds YAML file"
)


@feeds.command(name="status")
@feeds_option
@db_option
@_friendly
def feeds_status(config: str, db: Path) -> None:
    """Show each feed with its last run, count and error."""
    from mamori.intel.feeds.config import load_feeds

    store = _open(db)
    for feed in load_feeds(config):
        state = store.feed_state(feed.name)
        click.echo(
            f"{feed.name:24} {feed.kind:5} every {feed.interval}s  last run {state.last_run or 'never'}  "
            f"stored {state.last_count}  {('ERROR ' + state.last_error) if state.last_error else ''}"
        )


@feeds.command(name="run")
@feeds_option
@click.option("--name", "names", multiple=True, help="run only these feeds")
@db_option
@_friendly
def feeds_run(config: str, names: tuple[str, ...], db: Path) -> None:
    """Run feeds once now."""
    from mamori.intel.feeds.config import load_feeds
    from mamori.intel.feeds.runner import run_feed

    store = _open(db)
    for feed in load_feeds(config):
        if not names or feed.name in names:
            _report(run_feed(store, feed))


@feeds.command(name="poll")
@feeds_option
@click.option("--tick", type=float, default=30.0, show_default=True, help="seconds between schedule checks")
@db_option
@_friendly
def feeds_poll(config: str, tick: float, db: Path) -> None:
    """Run feeds on their schedule until interrupted."""
    from mamori.intel.feeds.config import load_feeds
    from mamori.intel.feeds.runner import poll

    store = _open(db)
    stop = threading.Event()
    try:
        poll(store, load_feeds(config), stop, on_run=_report, tick=tick)
    except KeyboardInterrupt:
        stop.set()


@intel.group(name="share")
def share() -> None:
    """Share an incident or alerts with partners: prepare (redacted draft), review, publish."""


def _load_json(path: str | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MamoriError(f"cannot read JSON: {exc}", where=path) from None


def _print_draft(share_id: str, store: IntelStore) -> None:
    from mamori.intel.share import load_share

    draft = load_share(store, share_id)
    click.echo(f"share {draft.id}  {draft.status}  {draft.tlp.label}  to {', '.join(draft.audience) or 'all readers'}")
    click.echo(f"  {len(draft.bundle['objects'])} object(s)")
    for exclusion in draft.excluded:
        click.echo(f"  left out {exclusion.object_id}: {exclusion.reason}")
    for entry in draft.audit:
        click.echo(
            f"  redacted {entry.kind} in {entry.object_id}.{entry.field}: {entry.preview} -> {entry.replacement}"
        )


@share.command(name="prepare")
@click.option("--incident", "incident_file", type=click.Path(exists=True, dir_okay=False), help="incident JSON")
@click.option("--incident-id", type=int, help="a stored incident of `mamori serve` (instead of --incident/--alerts)")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="with --incident-id: the data folder of `mamori serve` (default ./mamori-data)")
@click.option("--alerts", "alerts_file", type=click.Path(exists=True, dir_okay=False), help="alerts JSON list")
@click.option("--tlp", default="green", show_default=True)
@click.option("--to", "audience", multiple=True, help="partner token names (required for AMBER)")
@click.option("--collection", default="outgoing", show_default=True, help="outgoing collection")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False), help="redaction policy YAML")
@click.option("--organisation", default="Mamori SOC", show_default=True)
@db_option
@_friendly
def share_prepare(
    incident_file: str | None,
    incident_id: int | None,
    data_dir: Path | None,
    alerts_file: str | None,
    tlp: str,
    audience: tuple[str, ...],
    collection: str,
    policy: str | None,
    organisation: str,
    db: Path,
) -> None:
    """Build a redacted draft from an incident (a stored one, or JSON) and/or alerts and print it for review."""
    from mamori.intel.policy import load_policy
    from mamori.intel.share import prepare_share

    if incident_id is not None:
        if incident_file or alerts_file:
            raise MamoriError("give one source of incident", where="--incident-id",
                              hint="--incident-id reads the incident and its alerts; drop --incident/--alerts")
        from mamori.intel.share_incident import prepare_from_records

        source = click.get_current_context().get_parameter_source("db")
        draft_id, store, location = prepare_from_records(
            incident_id, data_dir, None if source is click.core.ParameterSource.DEFAULT else db,
            tlp=parse_tlp(tlp, where="--tlp"), audience=audience, collection=collection,
            policy=load_policy(policy), organisation=organisation)
        _print_draft(draft_id, store)
        click.echo(f"review, then: mamori intel share publish {draft_id} --db {location}")
        return
    if data_dir is not None:
        raise MamoriError("--data-dir goes with --incident-id", where="--data-dir")
    store = _open(db)
    store.create_collection("Outgoing", alias=collection, outgoing=True, description="shared with partners")
    incident = _load_json(incident_file)
    alerts = _load_json(alerts_file) or (incident or {}).get("alerts", [])
    draft = prepare_share(
        store,
        collection=collection,
        tlp=parse_tlp(tlp, where="--tlp"),
        audience=audience,
        alerts=alerts,
        incident=incident,
        policy=load_policy(policy),
        organisation=organisation,
    )
    _print_draft(draft.id, store)
    click.echo(f"review, then: mamori intel share publish {draft.id}")


@share.command(name="review")
@click.argument("share_id")
@db_option
@_friendly
def share_review(share_id: str, db: Path) -> None:
    """Print a share with every redaction and exclusion."""
    _print_draft(share_id, _open(db))


@share.command(name="publish")
@click.argument("share_id")
@db_option
@_friendly
def share_publish(share_id: str, db: Path) -> None:
    """Publish a reviewed share to its outgoing collection."""
    from mamori.intel.share import publish_share

    status = publish_share(_open(db), share_id)
    click.echo(f"published {status.success_count} object(s); {status.failure_count} failed")


@share.command(name="list")
@db_option
@_friendly
def share_list(db: Path) -> None:
    """List shares, newest first."""
    from mamori.intel.share import list_shares

    for share_id, created, status, level in list_shares(_open(db)):
        click.echo(f"{share_id}  {created}  {status:9}  {level}")
