"""``sb3-snn evaluate``: rl_zoo3's ``enjoy`` without rendering, reporting mean ± std episode reward."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import cast

import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_snn.cli.main import positive_int
from sb3_snn.zoo.experiment import add_experiment_arguments, load_experiment


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``sb3-snn evaluate``."""
    parser = argparse.ArgumentParser(prog="sb3-snn evaluate", description=__doc__)
    add_experiment_arguments(parser)
    parser.add_argument("--episodes", "-n", type=positive_int, default=10, help="number of evaluation episodes (>= 1)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of acting greedily")
    parser.add_argument("--json", type=Path, default=None, help="write the episode rewards and lengths to this file")
    return parser


def main(argv: list[str]) -> int:
    """Evaluate the experiment named on the command line and print ``mean ± std``."""
    args = build_parser().parse_args(argv)
    experiment = load_experiment(args)
    rewards, lengths = cast(tuple[list[float], list[int]], evaluate_policy(  # per-episode lists with return_episode_rewards
        experiment.model,
        experiment.env,
        n_eval_episodes=args.episodes,
        deterministic=not args.stochastic,
        return_episode_rewards=True,
    ))
    mean, std = float(np.mean(rewards)), float(np.std(rewards))
    print(f"{args.algo} on {args.env} ({experiment.model_path}): {mean:.2f} ± {std:.2f} over {args.episodes} episodes")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "algo": args.algo, "env": args.env, "model_path": experiment.model_path, "seed": args.seed,
            "episodes": args.episodes, "deterministic": not args.stochastic, "mean_reward": mean, "std_reward": std,
            "rewards": [float(r) for r in rewards], "lengths": [int(n) for n in lengths],
        }
        args.json.write_text(json.dumps(record, indent=2))
    experiment.env.close()
    return 0
