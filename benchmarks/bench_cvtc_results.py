"""Training runs behind the CVTC results table (the paper's Table 4 layout): DDQN+CVTC, DDQN-MLP of
the same size and PPO, on CartPole-v1, CartPole-v0 and MountainCar-v0; every CVTC agent is also
evaluated with Mostafa (beta-free) inference.

    python benchmarks/bench_cvtc_results.py --env CartPole-v1 --rows cvtc mlp ppo --seeds 0
    python benchmarks/bench_cvtc_results.py --env CartPole-v1 --rows cvtc --evaluate-only   # reuse trained agents

Each row is one ``sb3-snn train`` command (printed and stored); the final agent is evaluated
deterministically over ``--episodes`` episodes. Results: ``benchmarks/results/cvtc_<env>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch as th
from rl_zoo3.utils import get_latest_run_id
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import sb3_snn
from sb3_snn.zoo.algos import install_algos

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = {"CartPole-v1": "[128]", "CartPole-v0": "[128]", "MountainCar-v0": "[12, 48]"}
TARGETS = {"CartPole-v1": 475.0, "CartPole-v0": 195.0, "MountainCar-v0": -120.0}


def row_command(row: str, env: str, seed: int, folder: Path) -> tuple[str, list[str]]:
    """The algorithm and ``sb3-snn train`` arguments of one table row."""
    common = ["--env", env, "--seed", str(seed), "-f", str(folder), "--num-threads", "1", "--eval-freq", "5000"]
    if row == "cvtc":
        return "ddqn", ["--algo", "ddqn", "-conf", str(ROOT / "zoo_configs/cvtc.yml"), *common]
    if row == "mlp":
        params = ["-params", "policy:'MlpPolicy'", f"policy_kwargs:dict(net_arch={HIDDEN[env]})"]
        return "ddqn", ["--algo", "ddqn", "-conf", str(ROOT / "zoo_configs/cvtc.yml"), *common, *params]
    if row == "ppo":  # rl_zoo3's tuned PPO hyperparameters
        return "ppo", ["--algo", "ppo", *common]
    raise ValueError(f"unknown row {row!r}")


def evaluate(algo: str, env: str, run: Path, episodes: int, seed: int) -> dict[str, float | list[float]]:
    """Mean and std reward of the final agent of ``run`` (and of its Mostafa inference for CVTC)."""
    model = install_algos()[algo].load(run / f"{env}.zip", device="cpu")
    result: dict[str, float | list[float]] = {}
    modes = ["beta", "mostafa"] if hasattr(model.policy, "set_inference") else ["default"]
    for mode in modes:
        if mode != "default":
            model.policy.set_inference(mode)
        vec_env = make_vec_env(env, n_envs=1, seed=seed)
        rewards, _ = evaluate_policy(model, vec_env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
        result[f"{mode}_mean"], result[f"{mode}_std"] = float(np.mean(rewards)), float(np.std(rewards))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1", choices=sorted(HIDDEN))
    parser.add_argument("--rows", nargs="+", default=["cvtc", "mlp", "ppo"], choices=["cvtc", "mlp", "ppo"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--folder", type=Path, default=ROOT / "benchmarks/out/cvtc/logs")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the latest run of each row and seed")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more sb3-snn train arguments")
    args = parser.parse_args()
    th.set_num_threads(1)
    out = ROOT / f"benchmarks/results/cvtc_{args.env}.json"
    table = json.loads(out.read_text()) if out.is_file() else {"env": args.env, "target": TARGETS[args.env], "rows": {}}
    for row in args.rows:
        for seed in args.seeds:
            algo, argv = row_command(row, args.env, seed, args.folder)
            command = [sys.executable, "-m", "sb3_snn", "train", *argv, *args.extra]
            if not args.evaluate_only:
                print("$", " ".join(command[1:]), flush=True)
                subprocess.run(command, check=True, cwd=ROOT)
            run = args.folder / algo / f"{args.env}_{get_latest_run_id(str(args.folder / algo), args.env)}"
            record = {"seed": seed, "command": "sb3-snn train " + " ".join(argv + args.extra), "run": str(run),
                      **evaluate(algo, args.env, run, args.episodes, seed=10_000 + seed)}
            print(json.dumps(record), flush=True)
            table["rows"].setdefault(row, {})[str(seed)] = record
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    _ = sb3_snn  # registers CVTCPolicy
    main()
