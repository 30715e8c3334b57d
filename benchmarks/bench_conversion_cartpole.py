"""Benchmark: DQN (plain SB3, trained with the runner) on CartPole-v1 -> converted IF policy.

Conversion rate, score and SynOps per action for several T and both readouts, with the DQN's own
score under the same protocol (epsilon = 0.05, same episode seeds).

Train the teacher first (a few minutes on a CPU)::

    .venv/bin/sb3-snn train --algo dqn --env CartPole-v1 -conf zoo_configs/dqn.yml \
        -f benchmarks/out/logs --seed 0 --eval-freq 2500 --eval-episodes 10

then::

    .venv/bin/python benchmarks/bench_conversion_cartpole.py --model-path \
        benchmarks/out/logs/dqn/CartPole-v1_1/best_model.zip
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch as th
from stable_baselines3 import DQN

from sb3_snn.conversion import convert
from sb3_snn.conversion.evaluation import format_table, sweep

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_conversion_common import sweep_rows, write_record  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True, help="a DQN .zip trained on CartPole-v1")
    parser.add_argument("--percentile", type=float, default=99.9)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[50, 100, 200, 500])
    parser.add_argument("--readout", nargs="+", default=["robust", "rate"])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--n-calibration", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device of the simulation (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="benchmarks/results/conversion_cartpole.json")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)

    model = DQN.load(args.model_path, device="cpu")
    env = gym.make("CartPole-v1")
    start = time.perf_counter()
    policy = convert(model, env=env, percentile=args.percentile, n_calibration=args.n_calibration,
                     seed=args.seed, device=args.device)
    convert_seconds = time.perf_counter() - start
    results = sweep(policy, model, env, timesteps=args.timesteps, readouts=args.readout,
                    n_episodes=args.episodes, seed=args.seed)
    print(format_table(results))
    details = [r.as_dict() for r in results]
    at_500 = next((r for r in details if r["timesteps"] == 500 and r["readout"] == "robust"), None)
    headline = (f"T=500 robust: conversion rate {100 * at_500['conversion_rate']:.2f} %, score "
                f"{at_500['mean_score']:.1f} = {100 * at_500['mean_score'] / details[0]['mean_score']:.1f} % of the DQN"
                if at_500 else "see rows")
    record = {
        "benchmark": Path(args.output).stem,
        "title": "Conversion: DQN -> IF SNN on CartPole-v1 (T sweep, robust vs rate readout)",
        "command": " ".join([".venv/bin/python", "benchmarks/bench_conversion_cartpole.py", *sys.argv[1:]]),
        "target": "conversion rate >= 99 % and score >= 95 % of the DQN at T = 500; robust beats rate at small T",
        "headline": headline,
        "notes": [f"teacher {args.model_path} (plain SB3 DQN via sb3-snn train, zoo_configs/dqn.yml, seed 0)",
                  f"epsilon 0.05, {args.episodes} episodes per row, episode seeds {args.seed}.."
                  f"{args.seed + args.episodes - 1}; percentile {args.percentile}, {args.n_calibration} calibration "
                  f"frames (teacher plays, epsilon 0.05, seed {args.seed}); lambdas {policy.scales}; "
                  f"convert() took {convert_seconds:.1f} s"],
        "rows": sweep_rows(details, "DQN"),
        "details": details,
    }
    write_record(args.output, record, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
