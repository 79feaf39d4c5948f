"""``mamori demo``: a realistic intrusion fed through a running service, and where to look at it."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from mamori.demo.scenario import DEFAULT_SEED
from mamori.errors import MamoriError


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the demo like Ctrl-C: the service child is stopped cleanly."""
    raise KeyboardInterrupt


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("mamori-demo"), show_default=True,
              help="Data folder for the demo's service (cleared when an earlier demo made it).")
@click.option("--rules", "rules", multiple=True, type=click.Path(path_type=Path),
              help="Sigma rule folder (repeatable); default: the local rule store (`mamori rules update`).")
@click.option("--lang", type=click.Choice(["ja", "en"]), help="Language of the messages (default: from LANG).")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of the scenario.")
@click.option("--save-logs", type=click.Path(path_type=Path),
              help="Also write the generated events to this folder (winlogbeat.jsonl).")
@click.option("--timeout", type=float, default=240.0, show_default=True,
              help="Seconds to wait for the service and the first incident.")
@click.option("--no-wait", is_flag=True, help="Stop the service after printing where to look.")
def demo(data_dir: Path, rules: tuple[Path, ...], lang: str | None, seed: int, save_logs: Path | None,
         timeout: float, no_wait: bool) -> None:
    """Show Mamori at work: a phishing-to-exfiltration intrusion hidden in a company's ordinary Windows
    logs goes through a real service; SigmaHQ rules detect it and it becomes an incident in the console."""
    from mamori.demo.run import DemoOptions, describe, message, pick_language, start_demo

    language = pick_language(lang)
    options = DemoOptions(data_dir=data_dir, rules=rules, seed=seed, lang=language, timeout=timeout,
                          save_logs=save_logs)

    def say(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        running = start_demo(options, say)
    except MamoriError as exc:
        click.echo(f"mamori: error: {exc.where + ': ' if exc.where else ''}{exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    say("")
    say(message(language, "story"))
    describe(running.result, language, say)
    if no_wait:
        running.stop()
        return
    say(message(language, "serving"))
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while running.service.process is not None and running.service.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        say(message(language, "stopping"))
        running.stop()
