"""``sb3-snn convert ... -optimize``: a study of conversion settings on Optuna's shared storage.

    sb3-snn convert --algo dqn --env CartPole-v1 --model-path dqn.zip -optimize --n-trials 20 \\
        --storage postgresql://user@host:5432/optuna --study-name convert-cartpole [--timesteps 50 100 200]

Each trial converts the model with one sampled percentile, T, readout and rounding and evaluates it
(:func:`sb3_snn.zoo.tuning.optimize_conversion`): objectives conversion rate and score (both maximised),
SynOps per action as a user attribute. No training is involved. ``--timesteps``, ``--readout``,
``--rounding`` and ``--percentile`` narrow the search space (default:
:data:`sb3_snn.zoo.tuning.CONVERSION_SPACE`); the other settings (episodes, calibration frames, epsilon,
episode cap) come from the conversion config as for a plain ``sb3-snn convert``. Without ``--storage``, the
study lives in the journal file ``<folder>/optuna.journal``. Any number of workers (on one machine or, with
PostgreSQL, on many) may run the same command at once; each runs ``--n-trials`` trials of the one study.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sb3_snn.configs import config_file
from sb3_snn.zoo.experiment import load_experiment
from sb3_snn.zoo.tuning import conversion_space, optimize_conversion, pareto_table


#: settings taken from the conversion config (the search-space ones come from the command line)
EVALUATION_SETTINGS = ("n_calibration", "episodes", "epsilon", "max_episode_steps")


def add_study_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the study's flags to ``sb3-snn convert``'s parser."""
    parser.prog = "sb3-snn convert -optimize"
    parser.add_argument("-optimize", "--optimize-hyperparameters", action="store_true", help="run a study")
    parser.add_argument("--n-trials", type=int, default=20, help="trials this worker runs")
    parser.add_argument("--storage", default=None,
                        help="database URL (postgresql://...) or journal file (.log/.journal); "
                             "default <folder>/optuna.journal")
    parser.add_argument("--study-name", default=None, help="study name (default convert-<env>-<algo>)")
    parser.add_argument("--heartbeat", type=int, default=60, help="seconds between trial heartbeats (databases)")
    return parser


def main(argv: list[str], parser: argparse.ArgumentParser, load_from_path: Callable[[argparse.Namespace], Any],
         load_settings: Callable[[str, str], dict[str, Any]]) -> int:
    """Run this worker's trials and print the study's Pareto front; returns the exit code.

    :param argv: the arguments of ``sb3-snn convert``
    :param parser: ``sb3-snn convert``'s parser
    :param load_from_path: loads ``--model-path`` and builds its env (``sb3-snn convert``'s)
    :param load_settings: reads a conversion config's section (``sb3-snn convert``'s)
    """
    import torch as th

    args = add_study_arguments(parser).parse_args(argv)
    th.set_num_threads(args.threads)
    conf = args.conf_file or config_file("conversion.yml")
    if not Path(conf).is_file():
        raise SystemExit(f"sb3-snn convert: conversion config {conf} not found")
    settings = load_settings(str(conf), args.env)
    for key in EVALUATION_SETTINGS:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.model_path:
        model, env = load_from_path(args)
    else:
        experiment = load_experiment(args)
        model, env = experiment.model, experiment.env
    space = conversion_space(args.timesteps, args.readout, args.rounding,
                             [args.percentile] if args.percentile is not None else None)
    storage = args.storage or str(Path(args.folder) / "optuna.journal")
    study_name = args.study_name or f"convert-{args.env}-{args.algo}"
    evaluation = dict(n_episodes=settings.get("episodes", 10), epsilon=settings.get("epsilon", 0.05), seed=args.seed,
                      max_episode_steps=settings.get("max_episode_steps"))
    try:
        study = optimize_conversion(model, env, storage, study_name, args.n_trials, space,
                                    n_calibration=settings.get("n_calibration", 2000), evaluation=evaluation,
                                    seed=args.seed, heartbeat_interval=args.heartbeat)
    except ValueError as exc:
        raise SystemExit(f"sb3-snn convert: {exc}") from exc
    print(f"study {study_name!r} in {storage}: {len(study.trials)} trials; Pareto front (conversion rate, score):")
    print(pareto_table(study))
    return 0
