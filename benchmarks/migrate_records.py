"""Move the JSON records of ``benchmarks/results/`` into rows of ``benchmarks/records/<suite>.jsonl``.

    python benchmarks/migrate_records.py [--results benchmarks/results] [--delete]

Each JSON record becomes rows through :func:`benchmarks.result_rows.rows_from_record` (the same
conversion the scripts now use when they save). On top of that:

- fragments of one experiment that are superseded are dropped (:data:`DROP`, with the reason);
- the Pong conversion runs on disjoint episode-seed ranges at the same settings are kept as
  ``pong_runs`` rows and pooled into ``pong`` rows (all episodes, one s.e. over them, paired with
  the teacher on the same episode seeds);
- the Pong SDN teacher's score is read from the evaluation file the record names, so the row has
  its episode count and returns.

Rows already in a suite's file that did not come from a JSON record are kept. ``--delete`` removes
the migrated JSON files afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.records import RECORDS, Row, load_rows
from benchmarks.result_rows import returns_row, rows_from_record

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: Superseded one-off fragments, with the reason they are dropped.
DROP = {
    "conversion_pong_T100_seeds2-3": "percentile 99.9 and 2 episodes; the percentile-99.99 runs on episode seeds 0-4, "
    "6-15 and 16-25 supersede it",
    "conversion_pong_T500_seed1": "episode seeds 1-5 overlap conversion_pong's 0-4; the runs on 0-4, 6-15 and 16-25 "
    "supersede it",
}
#: Pong conversion runs at the same settings on disjoint episode seeds: pooled into ``pong`` rows.
POOL = ["conversion_pong", "conversion_pong_T100_T500_seeds6-15", "conversion_pong_T100_T500_seeds16-25"]


def pooled_pong(rows: list[Row]) -> list[Row]:
    """One ``pong`` row per (method, T, readout) from the ``pong_runs`` rows of :data:`POOL`."""
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        if row.experiment == "pong_runs" and row.metric == "mean_return" and row.extra.get("returns"):
            key = (row.method, row.setting.get("T"), row.setting.get("readout"), row.setting.get("rounding"))
            groups[key].append(row)
    out = []
    for (method, *_), group in groups.items():
        if len(group) < len(POOL):
            continue  # a setting not measured in every run (the rate readout at T=100): not pooled
        returns = [r for row in sorted(group, key=lambda x: x.setting["episode_seeds"]) for r in row.extra["returns"]]
        setting = {k: v for k, v in group[0].setting.items() if k != "episode_seeds"}
        setting.update(episode_seeds="0-4,6-25", conversions=len(group) if method == "conversion" else None)
        setting = {k: v for k, v in setting.items() if v is not None}
        runs = [row.extra["run"] for row in group]
        row = returns_row(
            "conversion",
            "pong",
            method,
            group[0].env,
            setting,
            None,
            None,
            returns=returns,
            extra={
                "pooled_from": [r["record"] for r in runs],
                "run": {**runs[0], "record": "pooled"},
                "note": "each run calibrates its own conversion (2000 frames of the teacher's play)",
            },
        )
        assert row is not None
        out.append(row)
    return out


def pong_teacher(rows: list[Row]) -> list[Row]:
    """The SDN Pong teacher row rebuilt from its evaluation file (returns, episode count)."""
    out = []
    for row in rows:
        source = row.extra.get("source")
        if row.method == "PPO teacher" and row.metric == "mean_return" and source:
            path = Path(source)
            if not path.exists():
                path = (
                    ROOT.parent / "shared" / Path(source).relative_to("/work/shared")
                    if source.startswith("/work/shared")
                    else path
                )
            if path.exists():
                data = json.loads(path.read_text())
                new = returns_row(
                    row.suite,
                    row.experiment,
                    row.method,
                    row.env,
                    row.setting,
                    row.seed,
                    None,
                    returns=data["rewards"],
                    extra={**row.extra, "source": "fixtures/ppo_pong/eval.json", "checkpoint": data.get("checkpoint")},
                )
                out.append(new if new is not None else row)
                continue
        out.append(row)
    return out


def student_starts(rows: list[Row]) -> list[Row]:
    """Mark SDN Pong returns with the number of distinct episode starts (distinct episode lengths)."""
    out = []
    for row in rows:
        lengths = row.extra.get("episode_lengths")
        if row.metric == "mean_return" and lengths:
            row = replace(row, extra={**row.extra, "distinct_episodes": len(set(lengths))})
        out.append(row)
    return out


def migrate(results: Path, records: Path) -> dict[str, list[Row]]:
    """Convert every JSON record under ``results`` (except :data:`DROP`) and write the suites."""
    by_suite: dict[str, list[Row]] = defaultdict(list)
    for path in sorted(results.glob("*.json")):
        if path.stem in DROP:
            print(f"drop {path.name}: {DROP[path.stem]}")
            continue
        suite, rows = rows_from_record(path.stem, json.loads(path.read_text()))
        if path.stem in POOL:
            rows = [replace(r, experiment="pong_runs") for r in rows]
        by_suite[suite] += rows
    by_suite["conversion"] += pooled_pong(by_suite["conversion"])
    for suite in list(by_suite):
        by_suite[suite] = student_starts(pong_teacher(by_suite[suite]))
    records.mkdir(parents=True, exist_ok=True)
    for suite, rows in by_suite.items():
        path = records / f"{suite}.jsonl"
        kept = (
            [r for r in load_rows(suite, directory=records) if "record" not in r.extra.get("run", {})] if path.exists() else []
        )
        path.write_text("".join(r.to_json() + "\n" for r in [*rows, *kept]))
        print(f"{path}: {len(rows)} migrated rows, {len(kept)} kept")
    return by_suite


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--records", type=Path, default=RECORDS)
    parser.add_argument("--delete", action="store_true", help="remove the JSON files once migrated")
    args = parser.parse_args(argv)
    migrate(args.results, args.records)
    if args.delete:
        for path in sorted(args.results.glob("*.json")):
            path.unlink()
        print(f"removed the JSON records of {args.results}")


if __name__ == "__main__":
    main()
