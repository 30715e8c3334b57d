"""Benchmark: a DQN trained by plain SB3 on CartPole-v1 -> converted IF policy.

Conversion rate, score and SynOps per action for several T, readouts and roundings, with the DQN's own
score under the same protocol (epsilon = 0.05, same episode seeds). Settings:

* ``--readout robust`` with ``--rounding floor``: the paper's method (the default of ``convert``);
* ``--rounding round``: hidden neurons get ``V_thr / (2T)`` more bias per step (``V_thr / 2`` over the
  ``T`` steps, the charge of a half-threshold initial membrane potential), so spike counts round
  instead of flooring -- a bias, so every backend runs it;
* ``--readout robust_hidden``: not the paper's; the last hidden layer's leftover potential is passed
  on too (that layer is analog at readout time);
* ``--readout rate``: spike counts of the output layer only.

The record says how the teacher was trained: from the ``train.json`` that
``bench_conversion_cartpole_train.py`` writes beside the model, or from the rl_zoo3-style log folder
(``<run>/CartPole-v1/args.yml`` and ``config.yml``) that ``sb3-snn train`` writes.

The teacher of ``benchmarks/out/results/conversion_cartpole.json`` (a few minutes on a CPU)::

    .venv/bin/sb3-snn train --algo dqn --env CartPole-v1 -conf sb3_snn/configs/zoo/dqn.yml \
        -f benchmarks/out/logs --seed 0 --eval-freq 2500 --eval-episodes 10
    .venv/bin/python benchmarks/bench_conversion_cartpole.py --model-path \
        benchmarks/out/logs/dqn/CartPole-v1_2/best_model.zip

Other teachers (plain ``stable_baselines3.DQN``, see ``bench_conversion_cartpole_train.py``)::

    .venv/bin/python benchmarks/bench_conversion_cartpole_train.py --preset zoo --seed 1
    .venv/bin/python benchmarks/bench_conversion_cartpole.py --readout robust --model-path \
        benchmarks/out/teachers/dqn_cartpole_zoo_seed1/best_model.zip \
        --output benchmarks/out/results/cartpole_conversion_teacher_zoo_seed1_best.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DQN

from sb3_snn.conversion import convert
from sb3_snn.conversion.evaluation import format_table, sweep
from sb3_snn.zoo.experiment import read_zoo_yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_conversion_common import sweep_rows, write_record


TARGET_RATE, TARGET_SCORE = 0.99, 0.95


def teacher_provenance(model_path: str | Path) -> dict[str, Any]:
    """How the teacher at ``model_path`` was trained, from the files its training run left beside it.

    ``train.json`` (``bench_conversion_cartpole_train.py``) is returned as it is (without the
    evaluation curve); an rl_zoo3-style run folder gives the ``sb3-snn train`` command's arguments and
    hyperparameters; otherwise only the path is known.

    :param model_path: the ``.zip`` the benchmark converts
    """
    path = Path(model_path)
    record = path.parent / "train.json"
    if record.is_file():
        data = json.loads(record.read_text())
        return {"trained_by": "bench_conversion_cartpole_train.py (plain stable_baselines3.DQN)",
                "model": path.stem, **{k: v for k, v in data.items() if k != "curve"}}
    args_file = next(path.parent.glob("*/args.yml"), None)
    if args_file is not None:
        args = read_zoo_yaml(args_file)
        config_file = args_file.parent / "config.yml"
        hyperparams = read_zoo_yaml(config_file) if config_file.is_file() else None
        command = (f"sb3-snn train --algo {args.get('algo')} --env {args.get('env')} -conf {args.get('conf_file')} "
                   f"-f {args.get('log_folder')} --seed {args.get('seed')} --eval-freq {args.get('eval_freq')} "
                   f"--eval-episodes {args.get('eval_episodes')}")
        info = {"trained_by": "sb3-snn train (rl_zoo3 runner, plain SB3 DQN)", "model": path.stem,
                "seed": args.get("seed"), "command": command, "hyperparameters": hyperparams}
        evaluations = path.parent / "evaluations.npz"
        if path.stem == "best_model" and evaluations.is_file():  # EvalCallback keeps the first best mean
            with np.load(evaluations) as data:
                means = data["results"].mean(axis=1)
                best = int(np.argmax(means))
                info["best_model"] = {"step": int(data["timesteps"][best]), "mean_return": float(means[best])}
        return info
    return {"trained_by": "unknown (no train.json or rl_zoo3 run folder beside the model)", "model": path.stem}


def chosen_checkpoint(info: dict[str, Any]) -> dict[str, Any]:
    """The converted checkpoint's entry of :func:`teacher_provenance` (``step``, ``mean_return``), ``{}`` if unknown."""
    chosen = info.get(info.get("model", ""))
    return chosen if isinstance(chosen, dict) else {}


def teacher_note(info: dict[str, Any]) -> str:
    """One line of :func:`teacher_provenance` for the record's notes."""
    parts = [f"teacher trained by {info['trained_by']}"]
    if info.get("command"):
        parts.append(f"command `{info['command']}`")
    if info.get("seed") is not None:
        parts.append(f"seed {info['seed']}")
    if info.get("hyperparameters"):
        parts.append(f"hyperparameters {json.dumps(info['hyperparameters'], sort_keys=True)}")
    if info.get("total_timesteps"):
        parts.append(f"{info['total_timesteps']} steps in {info.get('wall_seconds')} s")
    chosen = chosen_checkpoint(info)
    if chosen.get("step") is not None:
        parts.append(f"{info['model']} = step {chosen['step']} (evaluation mean {chosen.get('mean_return')})")
    return "; ".join(parts)


def headline(details: list[dict], at: int = 500) -> str:
    """Which settings at ``T = at`` met or missed the target (conversion rate and score vs the DQN)."""
    base = details[0]["mean_score"]
    parts = []
    for r in details:
        if r["readout"] == "ann" or r["timesteps"] != at:
            continue
        met = r["conversion_rate"] >= TARGET_RATE and r["mean_score"] >= TARGET_SCORE * base
        paper = " (paper's method)" if (r["readout"], r["rounding"]) == ("robust", "floor") else ""
        parts.append(f"{r['readout']}/{r['rounding']}{paper}: conversion rate {100 * r['conversion_rate']:.2f} %, "
                     f"score {100 * r['mean_score'] / base:.0f} % -> {'met' if met else 'missed'}")
    return f"T={at}: " + "; ".join(parts) if parts else "see rows"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True, help="a DQN .zip trained on CartPole-v1")
    parser.add_argument("--percentile", type=float, default=99.9)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[50, 100, 200, 500])
    parser.add_argument("--readout", nargs="+", default=["robust", "rate", "robust_hidden"])
    parser.add_argument("--rounding", nargs="+", default=["floor", "round"], choices=["floor", "round"])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--n-calibration", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device of the simulation (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="benchmarks/out/results/conversion_cartpole.json")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)

    teacher = teacher_provenance(args.model_path)
    model = DQN.load(args.model_path, device="cpu")
    env = gym.make("CartPole-v1")
    start = time.perf_counter()
    policy = convert(model, env=env, percentile=args.percentile, n_calibration=args.n_calibration,
                     seed=args.seed, device=args.device)
    convert_seconds = time.perf_counter() - start
    results = sweep(policy, model, env, timesteps=args.timesteps, readouts=args.readout, roundings=args.rounding,
                    n_episodes=args.episodes, seed=args.seed)
    print(format_table(results))
    details = [r.as_dict() for r in results]
    record = {
        "benchmark": Path(args.output).stem,
        "title": "Conversion: DQN -> IF SNN on CartPole-v1 (T sweep; readouts, rounding)",
        "command": " ".join([".venv/bin/python", "benchmarks/bench_conversion_cartpole.py", *sys.argv[1:]]),
        "target": "conversion rate >= 99 % and score >= 95 % of the DQN at T = 500; robust beats rate at small T",
        "headline": headline(details, at=500 if 500 in args.timesteps else max(args.timesteps)),
        "notes": [f"teacher {args.model_path}: {teacher_note(teacher)}",
                  f"epsilon 0.05, {args.episodes} episodes per row, episode seeds {args.seed}.."
                  f"{args.seed + args.episodes - 1}; percentile {args.percentile}, {args.n_calibration} calibration "
                  f"frames (teacher plays, epsilon 0.05, seed {args.seed}); lambdas {policy.scales}; "
                  f"convert() took {convert_seconds:.1f} s",
                  "settings: readout robust + rounding floor is the paper's method (convert()'s default); "
                  "rounding round = V_thr/(2T) extra bias per step on hidden neurons (counts round instead of "
                  "floor; a plain bias, exported as such); readout robust_hidden is not the paper's (the last "
                  "hidden layer's leftover potential is passed on, so that layer is analog at readout time)"],
        "teacher": teacher,
        "rows": sweep_rows(details, "DQN"),
        "details": details,
    }
    write_record(args.output, record, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
