"""What the SigmaHQ Windows rules find in EVTX-ATTACK-SAMPLES: rules fired, events and files with a
detection, and the counts by ATT&CK tactic (the folder names of the corpus are tactics too).

    python benchmarks/attack_coverage.py
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from mamori.hunt import run_hunt

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    samples = DATA / "evtx-attack-samples"
    rules = DATA / "sigmahq" / "rules" / "windows"
    if not samples.exists():
        sys.exit(f"needs {samples}")
    result = run_hunt([samples], [rules], explain_matches=False)
    detections = result.detections
    files = {d["source_file"] for d in detections}
    evtx_files = [f for f in result.files if f.source == "evtx"]
    print(f"rules loaded: {result.rules_loaded}, refused: {len(result.refused)}")
    print(f"events read: {result.events:,} from {len(result.files)} files ({len(evtx_files)} EVTX)")
    print(f"detections: {len(detections):,}; distinct rules fired: {len({d['rule_id'] for d in detections})}; "
          f"distinct events with a detection: {len({d['event_uid'] for d in detections}):,}; "
          f"files with a detection: {len(files)}")
    by_tactic = Counter(t for d in detections for t in d["tactics"])
    print("detections by rule tactic: " + ", ".join(f"{t} {n}" for t, n in by_tactic.most_common()))
    folders = Counter(Path(f).relative_to(samples).parts[0] for f in files)
    totals = Counter(Path(f.path).relative_to(samples).parts[0] for f in evtx_files)
    print("files with a detection by corpus folder: " + ", ".join(
        f"{k} {folders.get(k, 0)}/{v}" for k, v in sorted(totals.items())))


if __name__ == "__main__":
    main()
