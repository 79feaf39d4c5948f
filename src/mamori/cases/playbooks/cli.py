"""``mamori playbooks``: check playbook files before the service loads them."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.console import Console

from mamori.cases.playbooks.loader import load_folder
from mamori.cases.playbooks.runner import preview
from mamori.cases.playbooks.triggers import should_start


@click.group("playbooks")
def playbooks() -> None:
    """Response playbooks (YAML): check them."""


@playbooks.command("check")
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@click.option("--event", "event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a case event as JSON ({kind, actor, changes, alert, incident}): show which playbooks it "
                   "starts and what their actions would receive (nothing is run)")
def check(folder: Path, event_file: Path | None) -> None:
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
    if event_file is not None:
        payload = orjson.loads(event_file.read_bytes())
        payload.setdefault("actor", "system")
        payload.setdefault("changes", {})
        for playbook in library.playbooks:
            if not should_start(playbook, payload):
                console.print(f"{playbook.name}: not started by this event")
                continue
            console.print(f"{playbook.name}: started by this event")
            for action in preview(playbook, payload):
                gate = " (waits for approval)" if action.get("approval_required") else ""
                shown = action.get("error") or orjson.dumps(action["input"]).decode()
                console.print(f"  {action['name']} [{action['type']}]{gate}: {shown}", markup=False)
    if library.refused:
        click.get_current_context().exit(2)
