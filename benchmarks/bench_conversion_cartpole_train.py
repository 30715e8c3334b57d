"""Train the CartPole-v1 DQN teachers of the conversion benchmark with plain Stable-Baselines3.

Nothing of ``sb3_snn`` is used: ``stable_baselines3.DQN`` with rl_zoo3's tuned CartPole-v1
hyperparameters (``rl_zoo3/hyperparams/dqn.yml``, the same as ``sb3_snn/configs/zoo/dqn.yml``), evaluated
every ``--eval-freq`` steps on a separate env (10 deterministic episodes, as rl_zoo3's ``EvalCallback``)
and saved with ``model.save()``: ``final_model.zip`` (end of training) and ``best_model.zip`` (best
mean evaluation return; the first to reach it wins ties, as in rl_zoo3). A ``train.json`` beside them
records the preset, hyperparameters, seed, wall time and the evaluation curve.

Presets (``--preset``):

* ``zoo``: rl_zoo3's CartPole-v1 DQN exactly (5e4 steps, ``net_arch=[256, 256]``);
* ``zoo-long``: the same hyperparameters trained twice as long (1e5 steps);
* ``zoo-64``: the same hyperparameters with SB3's default ``net_arch=[64, 64]``;
* ``zoo-gamma0.9``: the same with ``gamma=0.9`` -- tried *for the conversion*, not as a zoo user would:
  it bounds the Q-values near ``1/(1 - gamma) = 10`` (the best-converting teacher had small Q-values);
  it did not convert better;
* ``zoo-gamma0.95`` / ``zoo-gamma0.97``: the same with ``gamma=0.95`` / ``0.97`` (Q-values near 20 / 33, the
  scale of the best-converting teacher, with a horizon long enough to balance the pole) -- also tried *for the
  conversion*.

Example (one core, a few minutes)::

    nice -n 10 .venv/bin/python benchmarks/bench_conversion_cartpole_train.py --preset zoo-long --seed 1
    # -> benchmarks/out/teachers/dqn_cartpole_zoo-long_seed1/{best_model,final_model}.zip
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
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.monitor import Monitor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import zoo_dqn_settings

#: rl_zoo3's ``hyperparams/dqn.yml``, section ``CartPole-v1``, with its net_arch [256, 256]
ZOO_CARTPOLE: dict[str, Any] = {**zoo_dqn_settings("CartPole-v1")[0], "policy_kwargs": {"net_arch": [256, 256]}}

#: preset name -> (total timesteps, hyperparameters)
PRESETS: dict[str, tuple[int, dict[str, Any]]] = {
    "zoo": (50_000, ZOO_CARTPOLE),
    "zoo-long": (100_000, ZOO_CARTPOLE),
    "zoo-64": (50_000, {**ZOO_CARTPOLE, "policy_kwargs": {"net_arch": [64, 64]}}),
    "zoo-gamma0.9": (50_000, {**ZOO_CARTPOLE, "gamma": 0.9}),
    "zoo-gamma0.95": (50_000, {**ZOO_CARTPOLE, "gamma": 0.95}),
    "zoo-gamma0.97": (50_000, {**ZOO_CARTPOLE, "gamma": 0.97}),
}


def run_dir(root: str | Path, preset: str, seed: int) -> Path:
    """Folder of one training run: ``<root>/dqn_cartpole_<preset>_seed<seed>``."""
    return Path(root) / f"dqn_cartpole_{preset}_seed{seed}"


def train(preset: str, seed: int, root: str | Path, eval_freq: int = 2500, eval_episodes: int = 10,
          timesteps: int | None = None) -> dict[str, Any]:
    """Train one DQN teacher with plain SB3 and save it; returns the ``train.json`` record.

    :param preset: a key of :data:`PRESETS`
    :param seed: seed of the model (``DQN(seed=...)``), the training env and the evaluation env
    :param root: folder under which the run's folder is made
    :param eval_freq: evaluate every this many environment steps
    :param eval_episodes: deterministic evaluation episodes per evaluation
    :param timesteps: override the preset's total timesteps
    """
    total, hyperparams = PRESETS[preset]
    total = timesteps or total
    out = run_dir(root, preset, seed)
    out.mkdir(parents=True, exist_ok=True)
    env = Monitor(gym.make("CartPole-v1"), str(out / "train"))
    eval_env = Monitor(gym.make("CartPole-v1"))
    eval_env.reset(seed=seed + 10_000)
    callback = EvalCallback(eval_env, n_eval_episodes=eval_episodes, eval_freq=eval_freq, deterministic=True,
                            best_model_save_path=str(out), log_path=str(out), verbose=0)
    model = DQN("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **hyperparams)
    start = time.perf_counter()
    model.learn(total_timesteps=total, callback=callback)
    seconds = time.perf_counter() - start
    model.save(out / "final_model")
    evaluations = np.load(out / "evaluations.npz")
    curve = [[int(t), float(np.mean(r))] for t, r in zip(evaluations["timesteps"], evaluations["results"], strict=True)]
    best = max(curve, key=lambda point: point[1])
    best_step = next(t for t, r in curve if r == best[1])  # EvalCallback keeps the first of a tie
    record = {
        "preset": preset, "seed": seed, "total_timesteps": total, "policy": "MlpPolicy",
        "hyperparameters": hyperparams, "library": "stable_baselines3.DQN (plain; sb3_snn not used)",
        "stable_baselines3": __import__("stable_baselines3").__version__, "torch": th.__version__,
        "torch_threads": th.get_num_threads(), "wall_seconds": round(seconds, 1),
        "eval": {"freq": eval_freq, "episodes": eval_episodes, "deterministic": True},
        "best_model": {"step": best_step, "mean_return": best[1]},
        "final_model": {"step": total, "mean_return": curve[-1][1] if curve else None},
        "curve": curve,
        "command": " ".join([".venv/bin/python", "benchmarks/bench_conversion_cartpole_train.py",
                             "--preset", preset, "--seed", str(seed)]
                            + (["--timesteps", str(timesteps)] if timesteps else [])),
    }
    (out / "train.json").write_text(json.dumps(record, indent=2))
    return record


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="zoo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timesteps", type=int, default=None, help="override the preset's total timesteps")
    parser.add_argument("--eval-freq", type=int, default=2500)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--root", default="benchmarks/out/teachers")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    record = train(args.preset, args.seed, args.root, args.eval_freq, args.eval_episodes, args.timesteps)
    print(json.dumps({k: v for k, v in record.items() if k != "curve"}, indent=2))
    print("curve:", record["curve"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
