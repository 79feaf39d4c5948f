"""Command action: run a program (an argv list, never a shell) with the event as JSON on stdin.

The exit code, standard output and standard error (each cut to 64 KiB) are kept in the run log. A
non-zero exit code fails the action unless ``ok_exit_codes`` lists it; a timeout kills the program.
``env`` adds variables (secret: ``${env:NAME}`` allowed); the child otherwise inherits only PATH,
LANG and HOME, not the service's secrets.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import orjson

from mamori.cases.playbooks.actions.base import ActionContext, ActionFailed, ActionType

MAX_OUTPUT = 64 * 1024
INHERITED = ("PATH", "LANG", "LC_ALL", "HOME", "SYSTEMROOT", "TMPDIR")


def _check(params: dict[str, Any]) -> list[tuple[str, str]]:
    argv = params.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str | int | float) for a in argv):
        return [("argv", "give the program and its arguments as a non-empty list of strings (no shell)")]
    problems: list[tuple[str, str]] = []
    if "env" in params and not isinstance(params["env"], dict):
        problems.append(("env", "give env as a mapping of name to value"))
    codes = params.get("ok_exit_codes", [0])
    if not isinstance(codes, list) or not all(isinstance(c, int) for c in codes):
        problems.append(("ok_exit_codes", "give a list of integers"))
    return problems


def _text(data: bytes) -> str:
    return data[:MAX_OUTPUT].decode("utf-8", errors="replace")


def run(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Run the program and capture what it says; a timeout or a bad exit code is a failure."""
    argv = [str(a) for a in params["argv"]]
    stdin = orjson.dumps(params.get("stdin", context.payload), default=str)
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env.update({str(k): str(v) for k, v in (params.get("env") or {}).items()})
    cwd = params.get("cwd") or None
    started = time.monotonic()
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=context.timeout, env=env,
                              cwd=cwd, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ActionFailed(f"the command ran longer than {context.timeout:g} s and was stopped", output={
            "stdout": _text(exc.stdout or b""), "stderr": _text(exc.stderr or b"")}) from exc
    except OSError as exc:
        raise ActionFailed(f"cannot run {argv[0]!r}: {exc.strerror or exc}", retryable=False) from exc
    output = {"exit_code": done.returncode, "stdout": _text(done.stdout), "stderr": _text(done.stderr),
              "seconds": round(time.monotonic() - started, 3)}
    if done.returncode not in params.get("ok_exit_codes", [0]):
        raise ActionFailed(f"the command exited with code {done.returncode}", output=output)
    return output


ACTION = ActionType(
    name="command", run=run, required=("argv",), optional=("env", "cwd", "ok_exit_codes", "stdin"),
    secret=("env",), check=_check,
    description="run a program (argv list, no shell) with the event as JSON on stdin",
)
