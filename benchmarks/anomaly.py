"""Anomaly-detection benchmarks: ``python benchmarks/anomaly.py adfa-ld|nsl-kdd|ueba|speed``.

adfa-ld  train on ADFA-LD normal training traces; AUC and detection at 1 %/5 % false alarms per family
         (--gru: also the numpy GRU language model alone, not part of the model)
nsl-kdd  train on normal rows of KDDTrain+_20Percent; AUC on KDDTest+ and KDDTest-21
ueba     the four-week scenario (200 users, 50 hosts, five injected attacks, Tokyo office hours); found /
         false alarms per day, peer groups computed from behaviour (and, for comparison, the departments)
speed    live scoring rate (events/s, one core) and baseline rebuild time over N stored events
The last line of each run is the headline figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POLARS_MAX_THREADS", "1")

import polars as pl

from mamori.detect.anomaly.engine import UebaEngine
from mamori.detect.anomaly.evaluate import evaluate_adfa_ld, evaluate_nsl_kdd, evaluate_scenario
from mamori.detect.anomaly.scenario import generate_scenario

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def adfa_ld(args: argparse.Namespace) -> None:
    """Print per-family and overall figures for ADFA-LD; with ``--gru``, the GRU language model's alone
    too (it is not part of the model: 4-5 more minutes of training for a figure, see sequence_rnn.py)."""
    from mamori.detect.anomaly.sequence_rnn import GruCallModel

    start = time.perf_counter()
    gru = GruCallModel(embed=32, hidden=128, epochs=20) if args.gru else None
    result = evaluate_adfa_ld(DATA / "adfa-ld" / "ADFA-LD.zip", order=args.order, rnn=gru)
    print(f"trained on {result.train_traces} normal traces; {result.normal_traces} validation normals")
    print(f"{'family':<18}{'attacks':>8}{'AUC':>8}{'@1%FA':>8}{'@5%FA':>8}")
    for r in (*result.families, result.overall):
        print(f"{r.family:<18}{r.attacks:>8}{r.auc:>8.4f}{r.caught_at_1pct:>8.3f}{r.caught_at_5pct:>8.3f}")
    print(f"parts alone: n-gram AUC {result.sequence_auc:.4f}, call-set AUC {result.call_set_auc:.4f}")
    if result.rnn is not None:
        train_s, score_s = result.rnn_seconds
        print(
            f"GRU language model alone (not in the model): AUC {result.rnn.auc:.4f} @1%FA "
            f"{result.rnn.caught_at_1pct:.3f} @5%FA {result.rnn.caught_at_5pct:.3f} "
            f"(train {train_s:.0f} s, score {score_s:.0f} s)"
        )
    print(f"elapsed {time.perf_counter() - start:.1f} s")
    print(f"adfa-ld AUC {result.overall.auc:.4f}")


def nsl_kdd(args: argparse.Namespace) -> None:
    """Print AUC on KDDTest+ and KDDTest-21."""
    start = time.perf_counter()
    result = evaluate_nsl_kdd(DATA / "nsl-kdd", k=args.k)
    print(f"trained on {result.train_rows} normal rows; elapsed {time.perf_counter() - start:.1f} s")
    print(f"nsl-kdd test+ AUC {result.auc_test:.4f}")
    print(f"nsl-kdd test-21 AUC {result.auc_test21:.4f}")


def ueba(args: argparse.Namespace) -> None:
    """Run the UEBA scenario and print what was found, with peer groups computed from behaviour (as the
    service does; the headline) and, for comparison, with the generator's departments as peers."""
    start = time.perf_counter()
    scenario = generate_scenario(seed=args.seed)
    truth = evaluate_scenario(scenario, departments=True)
    result = evaluate_scenario(scenario)
    elapsed = time.perf_counter() - start
    print(f"{len(scenario.events):,} events ({scenario.timezone} office hours); elapsed {elapsed:.1f} s")
    for kind, found in result.found.items():
        print(f"  {kind:<20} {'found' if found else 'MISSED'}")
    for day, n in result.false_alarms_per_day.items():
        print(f"  {day} false alarms {n}")
    for incident in result.incidents:
        print(f"  incident {incident.entity_type} {incident.entity} risk {incident.risk:.0f}")
    zone = ZoneInfo(scenario.timezone)
    for anomaly in result.anomalies:  # times on the organisation's clock
        print(f"  {anomaly.time.astimezone(zone):%Y-%m-%d %H:%M} {anomaly.detector:<24} {anomaly.explanation.en}")
        print(f"  {'':<41}{anomaly.explanation.ja}")
    print(
        f"ueba with the directory's departments as peers: found {sum(truth.found.values())}/{len(truth.found)} "
        f"max false alarms/day {truth.max_false_alarms_per_day}"
    )
    print(
        f"ueba found {sum(result.found.values())}/{len(result.found)} max false alarms/day "
        f"{result.max_false_alarms_per_day} (peer groups computed from behaviour)"
    )


def speed(args: argparse.Namespace) -> None:
    """Live scoring rate and baseline rebuild time over ``--events`` stored events."""
    scenario = generate_scenario(seed=args.seed)
    base = scenario.events
    copies = max(-(-args.events // len(base)), 1)  # at least --events
    span = scenario.end - base.get_column("_time").min()  # type: ignore[operator]
    big = pl.concat(
        [base.with_columns(pl.col("_time") + span * i, pl.col("_uid") + f"-{i}") for i in range(copies)],
        rechunk=True,
    )
    print(f"stored events {len(big):,}")
    engine = UebaEngine()
    start, cpu = time.perf_counter(), time.process_time()
    engine.fit(big)  # peer groups computed from behaviour, as the service builds them
    rebuild, rebuild_cpu = time.perf_counter() - start, time.process_time() - cpu
    with tempfile.TemporaryDirectory() as tmp:
        engine.save(Path(tmp))
        engine = UebaEngine.load(Path(tmp))
    day = base.filter(pl.col("_time") >= scenario.train_end)
    per_batch = max(args.batch // len(day), 1)
    rounds = 3
    # every round a batch of events the engine has not seen (their own ids, one day later each round):
    # detectors that skip events they already judged (rarity) or hours they already learned (half-space
    # trees) would otherwise do a fraction of the work from the second round on
    batches = [pl.concat([day.with_columns(pl.col("_time") + timedelta(days=r), pl.col("_uid") + f"-live{r}-{c}")
                          for c in range(per_batch)]) for r in range(rounds)]
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        engine.score(batch)
    rate = sum(len(b) for b in batches) / (time.perf_counter() - start)
    rate_cpu = sum(len(b) for b in batches) / (time.process_time() - cpu)
    print(f"baseline rebuild {rebuild:.1f} s wall, {rebuild_cpu:.1f} s CPU over {len(big):,} events (1 thread)")
    print(
        f"live scoring {rate:,.0f} events/s wall, {rate_cpu:,.0f} events/s per CPU-second "
        f"(batches of {len(batches[0]):,})"
    )


def main() -> None:
    """Parse the command line and run one benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="which", required=True)
    p = sub.add_parser("adfa-ld")
    p.add_argument("--order", type=int, default=7)
    p.add_argument("--gru", action="store_true", help="also train and score the GRU language model alone")
    p.set_defaults(run=adfa_ld)
    p = sub.add_parser("nsl-kdd")
    p.add_argument("--k", type=int, default=20)
    p.set_defaults(run=nsl_kdd)
    p = sub.add_parser("ueba")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(run=ueba)
    p = sub.add_parser("speed")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--batch", type=int, default=500_000)
    p.set_defaults(run=speed)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
