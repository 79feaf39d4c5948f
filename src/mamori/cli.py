"""The ``mamori`` command: thin wiring over the modules; errors become a message, a hint and an exit code.

Exit codes: 0 success; 1 unexpected error; 2 usage or configuration error (a MamoriError);
3 the hunt ran but some input could not be read completely.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from mamori.errors import MamoriError

# One BLAS thread unless the user says otherwise, set before anything imports numpy: Mamori's array work
# is element-wise (no large matrix products for BLAS threads to share), starting OpenBLAS's thread pool
# is ~40 ms of every command's start, and the hunt forks worker processes after numpy is loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

EXIT_INCOMPLETE_INPUT = 3

# Subcommands owned by other rooms, imported only when used (``mamori hunt`` stays fast to start).
LAZY_COMMANDS = {
    "serve": ("mamori.service.cli", "serve"),
    "users": ("mamori.service.cli", "users"),
    "tokens": ("mamori.service.cli", "tokens"),
    "intel": ("mamori.intel.cli", "intel"),
    "sources": ("mamori.sources.cli", "sources"),
    "demo": ("mamori.demo.cli", "demo"),
    "incidents": ("mamori.cases.cli", "incidents"),
    "report": ("mamori.report.cli", "report"),
    "playbooks": ("mamori.cases.playbooks.cli", "playbooks"),
    "anomaly": ("mamori.detect.anomaly.cli", "anomaly"),
}


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        available = [n for n, (module, _) in LAZY_COMMANDS.items() if _exists(module)]
        return sorted({*super().list_commands(ctx), *available})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        module_name, attribute = LAZY_COMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            return None
        found = getattr(module, attribute, None)
        return found if isinstance(found, click.Command) else None


@click.group(cls=_LazyGroup)
@click.version_option(package_name="mamori")
def main() -> None:
    """Mamori (守り): a Security Operations Center in one pip install."""


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2024-05-01T00:00:00Z)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(path_type=Path),
              help="Rule folder or zip (repeatable); default: the local rule store.")
@click.option("--source", help="Read every input as this source (see `mamori sources`); default: detect.")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "jsonl"]), default="table",
              show_default=True, help="How detections are written.")
@click.option("--output", type=click.Path(path_type=Path), help="Write detections to this file.")
@click.option("--min-level", type=click.Choice(["informational", "low", "medium", "high", "critical"]),
              help="Keep detections at this level or above.")
@click.option("--since", help="Keep events at or after this time (ISO 8601, UTC unless a zone is given).")
@click.option("--until", help="Keep events at or before this time.")
@click.option("--rule", "rule_ids", multiple=True, help="Keep only this rule id (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Keep rules with this tag or tag prefix, e.g. attack.t1059.")
@click.option("--encoding", help="Text encoding of the inputs (default: detect UTF-8 / Shift_JIS).")
@click.option("--timezone", "default_timezone", default="UTC", show_default=True,
              help="Zone of times that carry none (syslog), e.g. Asia/Tokyo.")
@click.option("--no-cache", is_flag=True, help="Do not use or write the compiled rule cache.")
@click.option("--workers", type=int, help="Processes (default: one per core, at most 4): each reads a share of the "
              "files and, with hundreds of rules, compiles and runs a share of the rules over every event.")
@click.option("--no-explain", is_flag=True, help="Skip the per-detection explanation.")
@click.option("--quarantine", type=click.Path(path_type=Path),
              help="Append records that could not be read (file, line, reason, text) to this JSONL file.")
@click.option("--store", "store_dir", type=click.Path(path_type=Path),
              help="Hunt the events stored by `mamori serve` in this data folder instead of files.")
@click.option("--placeholders", "placeholder_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="YAML file of values for the rules' |expand placeholders, e.g. Admins_Workstations: [WS1, WS2].")
@click.option("--quiet", "-q", is_flag=True, help="No terminal summary.")
def hunt(paths: tuple[Path, ...], rule_paths: tuple[Path, ...], source: str | None, output_format: str,
         output: Path | None, min_level: str | None, since: str | None, until: str | None,
         rule_ids: tuple[str, ...], tags: tuple[str, ...], encoding: str | None, default_timezone: str,
         no_cache: bool, workers: int | None, no_explain: bool, quarantine: Path | None, store_dir: Path | None,
         placeholder_file: Path | None, quiet: bool) -> None:
    """Run the Sigma rules over log files or folders (.evtx, JSON/JSONL, and every source Mamori reads)."""
    if store_dir is not None:
        run_command(lambda: _hunt_store(store_dir, rule_paths, output_format, output, since, until, placeholder_file))
        return
    if not paths:
        raise click.UsageError("give log files or folders to hunt, or --store DATA_DIR")
    run_command(lambda: _hunt(paths, rule_paths, source, output_format, output, min_level, since, until, rule_ids, tags,
                              encoding, default_timezone, no_cache, workers, no_explain, quarantine, placeholder_file,
                              quiet),
                leave_at_once=True)


def _hunt(paths: tuple[Path, ...], rule_paths: tuple[Path, ...], source: str | None, output_format: str,
          output: Path | None, min_level: str | None, since: str | None, until: str | None,
          rule_ids: tuple[str, ...], tags: tuple[str, ...], encoding: str | None, default_timezone: str,
          no_cache: bool, workers: int | None, no_explain: bool, quarantine: Path | None,
          placeholder_file: Path | None, quiet: bool) -> int:
    gc.disable()  # importing some 400 modules makes objects the collector would scan again and again
    try:
        from rich.console import Console

        from mamori.detect.sigma.rulestore import store_dir
        from mamori.hunt import HuntFilters, run_hunt
        from mamori.hunt_output import print_summary, render_table, write_csv, write_jsonl
        from mamori.sources.base import ReadOptions
    finally:
        gc.enable()
        gc.freeze()  # modules live as long as the process: out of every later collection (and of the
        # forked hunt processes' pages, which a collection would otherwise touch and copy)

    rules = list(rule_paths)
    if not rules:
        store = store_dir()
        if not store.exists():
            raise MamoriError("no rules given and the local rule store is empty",
                              hint="pass --rules DIR_OR_ZIP or run `mamori rules update`")
        rules = [store]
    filters = HuntFilters(min_level, _parse_time(since), _parse_time(until), rule_ids, tags)
    placeholders = _placeholders(placeholder_file)
    options = ReadOptions(encoding=encoding, default_timezone=default_timezone)
    result = run_hunt(list(paths), rules, source=source, options=options, filters=filters, use_cache=not no_cache,
                      workers=workers, explain_matches=not no_explain, quarantine=quarantine, fresh_process=True,
                      placeholders=placeholders)
    console = Console(stderr=True, soft_wrap=True)
    if result.unnamed_filters:
        click.echo(f"mamori: warning: no loaded rule has {', '.join(result.unnamed_filters)}", err=True)
    if output is not None or output_format != "table":
        if output_format == "jsonl":
            if output is None:
                write_jsonl(result.detections, sys.stdout.buffer)
            else:
                with output.open("wb") as handle:
                    write_jsonl(result.detections, handle)
        elif output_format == "csv":
            if output is None:
                write_csv(result.detections, sys.stdout)
            else:
                with output.open("w", newline="", encoding="utf-8") as text:
                    write_csv(result.detections, text)
        else:
            assert output is not None
            output.write_text(render_table(result.detections), encoding="utf-8")
    elif not quiet:
        from mamori.hunt_output import detections_table

        Console().print(detections_table(result.detections, limit=200))
    if not quiet:
        print_summary(result, console)
    return 0 if result.complete else EXIT_INCOMPLETE_INPUT


def _hunt_store(store_dir: Path, rule_paths: tuple[Path, ...], output_format: str, output: Path | None,
                since: str | None, until: str | None, placeholder_file: Path | None) -> int:
    """Retro-hunt: the rules over the service's stored events (Parquet lake)."""
    from mamori.detect.sigma.rulestore import store_dir as rule_store
    from mamori.hunt_output import write_jsonl
    from mamori.service.cli import store_hunt

    hits = store_hunt(list(rule_paths) or [rule_store()], data_dir=store_dir, since=_parse_time(since),
                      until=_parse_time(until), placeholders=_placeholders(placeholder_file))
    if output_format == "jsonl" or output is not None:
        if output is None:
            write_jsonl(hits, sys.stdout.buffer)
        else:
            with output.open("wb") as handle:
                write_jsonl(hits, handle)
    else:
        for hit in hits:
            click.echo(f"{hit.get('time')}  {hit.get('level')}  {hit.get('rule_title')}  {hit.get('host')}")
    click.echo(f"{len(hits)} detections in the stored events of {store_dir}", err=True)
    return 0


def _placeholders(path: Path | None) -> dict[str, tuple[str, ...]] | None:
    """The ``--placeholders`` file's values (None when not given)."""
    if path is None:
        return None
    from mamori.detect.sigma.placeholders import read_placeholders

    return read_placeholders(path)


@main.group()
def rules() -> None:
    """The local rule store: update it, list what loads and what is refused."""


@rules.command("update")
@click.option("--from", "source", default=None, help="URL, zip or folder (default: SigmaHQ's release package).")
def rules_update(source: str | None) -> None:
    """Fill or refresh the local rule store."""

    def run() -> int:
        from mamori.detect.sigma.rulestore import DEFAULT_URL, update_store

        folder, count = update_store(source or DEFAULT_URL)
        click.echo(f"rule store {folder}: {count} rule files")
        return 0

    run_command(run)


@rules.command("list")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(path_type=Path),
              help="Rule folder or zip (repeatable); default: the local rule store.")
@click.option("--refused", is_flag=True, help="List only the refused rules, with the reason.")
@click.option("--format", "output_format", type=click.Choice(["table", "jsonl"]), default="table")
@click.option("--placeholders", "placeholder_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="YAML file of values for the rules' |expand placeholders, e.g. Admins_Workstations: [WS1, WS2].")
def rules_list(rule_paths: tuple[Path, ...], refused: bool, output_format: str, placeholder_file: Path | None) -> None:
    """Show the rules that load (by log source and level), the meta-filters and the rules each applies
    to, and every refusal with its reason."""

    def run() -> int:
        from collections import Counter

        import orjson
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from mamori.detect.sigma import Detector, load_ruleset
        from mamori.detect.sigma.rulestore import store_dir

        sources = list(rule_paths) or [store_dir()]
        ruleset = load_ruleset(sources, placeholders=_placeholders(placeholder_file))
        detector = Detector(ruleset)
        if output_format == "jsonl":
            out = sys.stdout.buffer
            if not refused:
                for rule in ruleset.rules:
                    out.write(orjson.dumps({"status": "loaded", "id": rule.id, "title": rule.title,
                                            "level": rule.level, "logsource": rule.logsource.label(),
                                            "path": rule.path, "filters": [f.id for f in rule.filters]}) + b"\n")
                for meta_filter in ruleset.filters:
                    out.write(orjson.dumps({"status": "filter", "id": meta_filter.id, "title": meta_filter.title,
                                            "logsource": meta_filter.logsource.label(), "path": meta_filter.path,
                                            "rules": [r.id for r in ruleset.rules if meta_filter in r.filters]})
                              + b"\n")
            for item in ruleset.refused:
                out.write(orjson.dumps({"status": "refused", "id": item.rule_id, "path": item.path,
                                        "reason": item.reason, "kind": item.kind}) + b"\n")
            return 0
        console = Console()
        if not refused:
            total = len(ruleset.rules) + len(ruleset.refused)
            console.print(f"{len(ruleset.rules)} rules and {len(ruleset.correlations)} correlations loaded, "
                          f"{len(ruleset.refused)} refused ({100 * len(ruleset.rules) / max(total, 1):.1f}% load)")
            by_source = Counter(r.logsource.label() for r in ruleset.rules)
            table = Table(title="Rules by log source (product/category/service)")
            table.add_column("log source")
            table.add_column("rules", justify="right")
            table.add_column("routed")
            unrouted = {r.logsource for r in detector.unrouted}
            for label, count in by_source.most_common():
                routed = not any(u.label() == label for u in unrouted)
                table.add_row(label, str(count), "yes" if routed else "[yellow]no reader yet")
            console.print(table)
            for meta_filter in ruleset.filters:
                tuned = [r for r in ruleset.rules if meta_filter in r.filters]
                console.print(escape(f"filter {meta_filter.title} ({meta_filter.id}, {meta_filter.path}) applies to "
                                     f"{len(tuned)} rule{'s' if len(tuned) != 1 else ''}: "
                                     + ", ".join(f"{r.title} ({r.id})" for r in tuned)), soft_wrap=True)
        for item in ruleset.refused:
            console.print(f"[yellow]refused[/] {item.path}: {item.reason}", soft_wrap=True)
        return 0

    run_command(run)


def run_command(action: Any, leave_at_once: bool = False) -> None:
    """Run a command body; map errors to a message, a hint and an exit code (never a traceback); every
    subcommand of every room goes through it so errors read the same everywhere.

    ``leave_at_once``: once the body has written everything, the `mamori` process ends without tearing
    down what it built (a hunt's rules, plans and batches: 0.1-0.3 s of freeing objects one by one that
    the operating system does at once). Only when this process is the command itself, never inside a
    host that called the CLI (a test runner)."""
    try:
        code = action()
    except MamoriError as exc:
        click.echo(f"mamori: error: {exc.where + ': ' if exc.where else ''}{exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except (OSError, FileNotFoundError) as exc:
        click.echo(f"mamori: error: {exc}", err=True)
        sys.exit(2)
    if leave_at_once and _started_as_mamori():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    sys.exit(code or 0)


def _started_as_mamori() -> bool:
    """Whether this process is the `mamori` command (its script, or ``python -m mamori``)."""
    first = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return first.name == "mamori" or (first.name == "__main__.py" and first.parent.name == "mamori")
