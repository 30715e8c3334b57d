"""``sb3-snn sweep``: a grid of envs x methods x seeds run by any number of workers on one Optuna storage.

    sb3-snn sweep sweep.yml --storage postgresql://user@host:5432/optuna   # a worker; start as many as you like
    sb3-snn sweep sweep.yml --storage URL --report                          # table + plot from the study
    sb3-snn sweep --best-config --storage URL --study-name NAME -conf sdn --env CartPole-v1 [--trial-id N]

A sweep file::

    study: cartpole-methods          # the study all workers join (default: the file's name)
    envs: [CartPole-v1]
    seeds: [0, 1, 2]
    n_timesteps: 20000               # optional: else each zoo config's own
    eval_episodes: 10
    folder: runs                     # where cells train (relative to the file)
    methods:
      ddqn: {algo: ddqn}
      cvtc: {algo: ddqn, conf: cvtc}
      sdn:  {algo: sdn, conf: sdn, hyperparams: {teacher: teacher.zip}}

Optuna's ``GridSampler`` hands the cells out; with a database storage each running cell sends a heartbeat and
a cell whose worker died is run again by another worker (continuing from its checkpoint). Without
``--storage`` the study lives in the journal file ``<folder>/optuna.journal``. ``--best-config`` prints the
zoo config entry of a ``sb3-snn train -optimize`` study's best trial (see docs/guide_tune.md).
"""

from __future__ import annotations

import argparse
import sys

import yaml

from sb3_snn.zoo.tuning import SweepSpec, best_zoo_entry, run_sweep, sweep_report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sb3-snn sweep", description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", help="the sweep YAML file")
    parser.add_argument("--storage", default=None,
                        help="database URL (postgresql://...) or journal file (.log/.journal); "
                             "default: <folder>/optuna.journal")
    parser.add_argument("--report", action="store_true", help="print the table and write report.json/report.png")
    parser.add_argument("--heartbeat", type=int, default=60, help="seconds between heartbeats of a running cell")
    parser.add_argument("--grace", type=int, default=None,
                        help="seconds without a heartbeat after which a cell is run again (default 2 heartbeats)")
    parser.add_argument("--best-config", action="store_true",
                        help="print the zoo config entry of a tuning study's best trial (needs --study-name, -conf, --env)")
    parser.add_argument("--study-name", default=None, help="with --best-config: the sb3-snn train -optimize study")
    parser.add_argument("-conf", "--conf-file", default=None, help="with --best-config: the zoo config that was tuned")
    parser.add_argument("--env", default=None, help="with --best-config: its environment entry")
    parser.add_argument("--trial-id", type=int, default=None, help="with --best-config: this trial, not the best")
    return parser


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.best_config:
            return _best_config(args)
        if args.spec is None:
            raise SystemExit("sb3-snn sweep: give the sweep YAML file (or --best-config)")
        spec = SweepSpec.load(args.spec)
        storage = args.storage or str(spec.folder / "optuna.journal")
        if args.report:
            print(sweep_report(spec, storage))
            print(f"wrote {spec.folder}/report.json, report.png")
            return 0
        study = run_sweep(spec, storage, heartbeat_interval=args.heartbeat, grace=args.grace)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise SystemExit(f"sb3-snn sweep: {exc}") from exc
    done = sum(t.state.name == "COMPLETE" for t in study.trials)
    print(f"sweep {spec.study!r}: {done} complete trials of {len(spec.envs) * len(spec.methods) * len(spec.seeds)} "
          f"cells; `sb3-snn sweep {args.spec} --report` for the table")
    return 0


def _best_config(args: argparse.Namespace) -> int:
    from sb3_snn.zoo.tuning import zoo_config_path

    missing = [flag for flag, value in (("--storage", args.storage), ("--study-name", args.study_name),
                                         ("-conf", args.conf_file), ("--env", args.env)) if value is None]
    if missing:
        raise SystemExit(f"sb3-snn sweep --best-config needs {', '.join(missing)}")
    entry = best_zoo_entry(args.storage, args.study_name, zoo_config_path(args.conf_file, ""), args.env, args.trial_id)
    yaml.safe_dump({args.env: entry}, sys.stdout, sort_keys=False)
    return 0
