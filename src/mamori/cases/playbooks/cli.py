"""``mamori playbooks``: check playbook files before the service loads them."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from mamori.cases.playbooks.loader import load_folder


@click.group("playbooks")
def playbooks() -> None:
    """Response playbooks (YAML): check them."""


@playbooks.command("check")
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
def check(folder: Path) -> None:
    """Load every playbook of FOLDER (or one file) and report the refused ones with file, field and
    reason; exits with code 2 when any is refused."""
    console = Console(highlight=False, soft_wrap=True)
    library = load_folder(folder)
    for playbook in library.playbooks:
        trigger = playbook.trigger
        level = f", level {trigger.level_match.replace('_', ' ')} {trigger.level}" if trigger.level else ""
        gated = sum(1 for a in playbook.actions if a.approval_required)
        console.print(f"[green]ok[/green]      {playbook.name}  ({playbook.path}): on {', '.join(trigger.events)}"
                      f"{level}; {len(playbook.actions)} action(s), {gated} need approval")
    for refusal in library.refused:
        console.print(f"[red]refused[/red] {refusal.path}: {refusal.field}: {refusal.reason}")
    console.print(f"{len(library.playbooks)} loaded, {len({r.path for r in library.refused})} file(s) refused")
    if library.refused:
        click.get_current_context().exit(2)
