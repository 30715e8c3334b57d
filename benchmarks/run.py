"""Run a benchmark suite declared in ``benchmarks/suites.yml`` and append its rows to the records.

    python benchmarks/run.py --list
    python benchmarks/run.py --suite ddqn [--quick] [--only cartpole] [--dry-run]

Experiments of kind ``zoo`` are trained with ``sb3-snn train`` (one run per seed) and evaluated with
``sb3-snn evaluate --json`` (each checkpoint, the declared episodes and evaluation seed); the runner
turns the evaluations into :class:`benchmarks.records.Row` records. Experiments of kind ``script``
run a benchmark script, which appends its own rows. Either way the rows land in
``benchmarks/records/<suite>.jsonl``; ``python benchmarks/report.py`` renders them.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.records import RECORDS, Row, append_rows, run_info

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "benchmarks" / "suites.yml"
OUT = ROOT / "benchmarks" / "out" / "run"
QUICK_RECORDS = ROOT / "benchmarks" / "out" / "records-quick"
KINDS = ("headline", "study")


def load_suites(path: Path = SUITES) -> dict[str, dict[str, Any]]:
    """The suites of ``path`` (safe YAML), checked: a kind, experiments, each with a ``run``.

    :param path: the suites file
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    suites = data.get("suites")
    if not isinstance(suites, dict) or not suites:
        raise ValueError(f"{path}: expected a top-level 'suites:' mapping")
    for name, suite in suites.items():
        if suite.get("kind") not in KINDS:
            raise ValueError(f"{path}: suite {name!r} has kind {suite.get('kind')!r}; allowed: {', '.join(KINDS)}")
        experiments = suite.get("experiments")
        if not isinstance(experiments, dict) or not experiments:
            raise ValueError(f"{path}: suite {name!r} has no experiments")
        for exp_name, exp in experiments.items():
            run = exp.get("run") or {}
            if not ("zoo" in run) ^ ("script" in run):
                raise ValueError(f"{path}: {name}/{exp_name}: 'run' needs exactly one of 'zoo' or 'script'")
    return suites


def resolved(experiment: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The experiment with its ``quick`` overrides applied (dicts merged one level deep)."""
    exp = copy.deepcopy(experiment)
    if quick:
        for key, value in (exp.get("quick") or {}).items():
            if isinstance(value, dict) and isinstance(exp.get(key), dict):
                exp[key] = {**exp[key], **value}
            elif key == "args":
                exp["run"] = {**exp["run"], "args": value}
            else:
                exp[key] = value
    return exp


def expand(args: list[Any], exp: dict[str, Any]) -> list[str]:
    """``args`` with {seeds}, {steps}, {episodes} and {eval_seed} replaced by the experiment's values."""
    evaluation = exp.get("evaluation") or {}
    out: list[str] = []
    for arg in args:
        text = str(arg)
        if text == "{seeds}":
            out += [str(s) for s in exp.get("seeds") or [0]]
            continue
        out.append(
            text.format(
                steps=exp.get("steps"),
                episodes=evaluation.get("episodes"),
                eval_seed=evaluation.get("seed", 0),
                seeds=" ".join(map(str, exp.get("seeds") or [0])),
            )
        )
    return out


def call(command: list[str], dry_run: bool, records: Path | None = None) -> None:
    """Run ``command`` from the repository root (its rows go to ``records`` via ``$SB3_SNN_RECORDS``)."""
    print("$", " ".join(command), flush=True)
    if not dry_run:
        env = {**os.environ, **({"SB3_SNN_RECORDS": str(records)} if records is not None else {})}
        subprocess.run(command, cwd=ROOT, check=True, env=env)


def run_script(exp: dict[str, Any], dry_run: bool, records: Path) -> None:
    call([sys.executable, exp["run"]["script"], *expand(exp["run"].get("args") or [], exp)], dry_run, records)


def run_zoo(suite: str, name: str, exp: dict[str, Any], dry_run: bool, records: Path) -> None:
    """Train per seed with ``sb3-snn train``, evaluate each checkpoint with ``sb3-snn evaluate --json``."""
    zoo = exp["run"]["zoo"]
    algo, env = zoo["algo"], exp["env"]
    evaluation = exp.get("evaluation") or {}
    logs = OUT / suite / name / "logs"
    cli = [sys.executable, "-m", "sb3_snn"]
    rows = []
    for seed in exp.get("seeds") or [0]:
        steps = ["-n", str(exp["steps"])] if exp.get("steps") else []
        call(
            [
                *cli,
                "train",
                "--algo",
                algo,
                "--env",
                env,
                "-conf",
                exp["config"],
                "-f",
                str(logs),
                "--seed",
                str(seed),
                *steps,
                *[str(a) for a in zoo.get("train_args") or []],
            ],
            dry_run,
        )
        if dry_run:
            continue
        exp_id = max(int(p.name.rsplit("_", 1)[1]) for p in (logs / algo).glob(f"{env}_*"))
        for checkpoint in evaluation.get("checkpoints") or ["final"]:
            if checkpoint == "best" and not (logs / algo / f"{env}_{exp_id}" / "best_model.zip").exists():
                print(f"no best_model.zip in {env}_{exp_id} (no evaluation during training): 'best' skipped")
                continue
            out = logs / f"eval_{env}_{exp_id}_{checkpoint}.json"
            call(
                [
                    *cli,
                    "evaluate",
                    "--algo",
                    algo,
                    "--env",
                    env,
                    "-f",
                    str(logs),
                    "--exp-id",
                    str(exp_id),
                    "--episodes",
                    str(evaluation.get("episodes", 10)),
                    "--seed",
                    str(evaluation.get("seed", 0)),
                    "--json",
                    str(out),
                    *(["--load-best"] if checkpoint == "best" else []),
                    *([] if evaluation.get("deterministic", True) else ["--stochastic"]),
                ],
                dry_run,
            )
            result = json.loads(out.read_text())
            returns = [float(r) for r in result["rewards"]]
            count = len(returns)
            mean = sum(returns) / count
            var = sum((r - mean) ** 2 for r in returns) / (count - 1) if count > 1 else None
            setting = {
                "checkpoint": checkpoint,
                "config": exp["config"],
                "training_seeds": 1,
                **({"steps": exp["steps"]} if exp.get("steps") else {}),
            }
            rows.append(
                Row(
                    suite,
                    name,
                    exp["method"],
                    env,
                    setting,
                    seed,
                    "mean_return",
                    mean,
                    (var / count) ** 0.5 if var is not None else None,
                    count,
                    "return",
                    {
                        "returns": returns,
                        "lengths": result["lengths"],
                        "eval_seed": evaluation.get("seed", 0),
                        "model_path": str(result.get("model_path")),
                    },
                )
            )
    if rows:
        print(f"appended {len(rows)} rows to {append_rows(suite, rows, directory=records, run=run_info())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", help="the suite to run (see --list)")
    parser.add_argument("--only", nargs="+", default=None, help="run only these experiments of the suite")
    parser.add_argument("--quick", action="store_true", help="the experiments' short smoke settings")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--list", action="store_true", help="list the suites and their experiments")
    parser.add_argument("--suites", type=Path, default=SUITES, help="the suites file")
    parser.add_argument(
        "--records",
        type=Path,
        default=RECORDS,
        help="where the rows go (default benchmarks/records; with --quick benchmarks/out/records-quick)",
    )
    args = parser.parse_args(argv)
    suites = load_suites(args.suites)
    if args.list or not args.suite:
        for name, suite in suites.items():
            print(f"{name} ({suite['kind']}): {', '.join(suite['experiments'])}")
        return 0 if args.list else 2
    if args.suite not in suites:
        parser.error(f"unknown suite {args.suite!r}; known: {', '.join(suites)}")
    experiments = suites[args.suite]["experiments"]
    # smoke runs must not mix into the records the report renders
    records = QUICK_RECORDS if args.quick and args.records == RECORDS else args.records
    unknown = sorted(set(args.only or []) - set(experiments))
    if unknown:
        parser.error(f"suite {args.suite!r} has no experiment {unknown}; it has: {', '.join(experiments)}")
    for name, experiment in experiments.items():
        if args.only and name not in args.only:
            continue
        exp = resolved(experiment, args.quick)
        print(
            f"# {args.suite}/{name}: {exp.get('method')} on {exp.get('env')}"
            + (f" (needs {exp['needs']})" if exp.get("needs") else ""),
            flush=True,
        )
        if "zoo" in exp["run"]:
            run_zoo(args.suite, name, exp, args.dry_run, records)
        else:
            run_script(exp, args.dry_run, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
