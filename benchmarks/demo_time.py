"""Time ``mamori demo`` from a fresh install to "incident visible in the console" (bar 5 of issue 5).

``python benchmarks/demo_time.py [--rules DIR] [--runs N] [--warm]``

Each run is a new ``mamori demo --no-wait`` process in an empty folder with an empty rule cache
(``MAMORI_CACHE_DIR``) and empty ``MAMORI_HOME``: nothing compiled or stored before, as after
``pip install``. ``--warm`` keeps the rule cache between runs (the second and later demos). The clock
runs from launching the command to the line saying the incident is visible; that line is printed
only once the console page of the incident answered to a logged-in user. The phases the demo prints
(service up, events sent) are shown too. The last line is the headline figure.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RULES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sigmahq" / "rules"
BUDGET_SECONDS = 120.0


def one_run(rules: Path, cache: Path, work: Path) -> tuple[float, dict[str, float]]:
    """Run the demo once in ``work``; return the wall time to "incident visible" and the printed phases."""
    env = {**os.environ, "MAMORI_CACHE_DIR": str(cache), "MAMORI_HOME": str(work / "home"), "LANG": "C.UTF-8"}
    command = [sys.executable, "-m", "mamori", "demo", "--no-wait", "--lang", "en", "--rules", str(rules)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    visible: float | None = None
    phases: dict[str, float] = {}
    output: list[str] = []
    for line in process.stdout:
        output.append(line)
        elapsed = time.perf_counter() - started
        if line.startswith("Service up"):
            phases["service up"] = elapsed
        elif line.startswith("Sent "):
            phases["events sent"] = elapsed
        elif "incidents: " in line and "incidents: 0" not in line and "first incident" not in phases:
            phases["first incident"] = elapsed
        elif line.startswith("Incident visible"):
            visible = elapsed
            found = re.search(r"([\d.]+) s after", line)
            if found:
                phases["demo's own figure"] = float(found.group(1))
    code = process.wait()
    if code != 0 or visible is None:
        sys.stderr.write("".join(output))
        raise SystemExit(f"the demo failed (exit {code})")
    return visible, phases


def main() -> None:
    """Run the demo the given number of times and print each run's phases and the worst time."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=Path, default=RULES, help="Sigma rule folder (default: SigmaHQ rules/)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warm", action="store_true", help="keep the compiled rule cache between runs")
    args = parser.parse_args()
    if not args.rules.is_dir():
        raise SystemExit(f"{args.rules}: no rule folder (SigmaHQ's rules/ ships in ../shared/data)")
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mamori-demo-bench-") as root:
        shared_cache = Path(root) / "cache"
        for run in range(args.runs):
            work = Path(root) / f"run{run}"
            work.mkdir()
            cache = shared_cache if args.warm else work / "cache"
            seconds, phases = one_run(args.rules.resolve(), cache, work)
            times.append(seconds)
            detail = ", ".join(f"{name} {value:.1f} s" for name, value in phases.items())
            print(f"run {run + 1}: incident visible after {seconds:.1f} s ({detail})")
    worst = max(times)
    verdict = "within" if worst < BUDGET_SECONDS else "OVER"
    state = "warm rule cache" if args.warm else "fresh install (cold rule cache)"
    print(f"mamori demo, {state}, {os.cpu_count()} cores: incident visible in the console after "
          f"{worst:.1f} s (worst of {len(times)}; {verdict} the {BUDGET_SECONDS:.0f} s budget)")


if __name__ == "__main__":
    main()
