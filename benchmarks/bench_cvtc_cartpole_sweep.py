"""Training-stability sweep of DDQN + CVTC on CartPole-v1: which setting keeps the agent near 500?

The base config (:data:`BASE`, batch 64) learns, but its evaluations can swing between ~50 and 500 after
25k steps, so a checkpoint's score is luck. Each run here trains ``sb3_snn.DDQN`` with
``CVTCPolicy`` for 50k steps on 1 thread (1.7-4 min), evaluating 10 deterministic episodes every 2 500
steps on a separate env, and prints one JSON line (``name``, ``seed``, ``minutes``, ``curve``).
The summary counts, per run, the evaluations after 25k steps that reach 475 ("late >= 475") and their
mean: a stable setting has most of them there.

    python benchmarks/bench_cvtc_cartpole_sweep.py --config base bs256 --seeds 3 4 --jobs 2
    python benchmarks/bench_cvtc_cartpole_sweep.py --summary    # -> benchmarks/out/results/cvtc_cartpole_sweep.json

Runs are logged to ``benchmarks/out/cvtc_sweep/<config>_<seed>.log``; a run whose log holds a result
is not repeated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_result

LOGS = ROOT / "benchmarks/out/cvtc_sweep"
#: the reference settings (a CartPole-v1 section of the zoo config format, batch 64): every config changes it.
BASE: dict[str, Any] = {
    "learning_rate": 3e-4, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000, "gamma": 0.99,
    "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128, "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [128], "beta": 1e-4, "encoder": "auto", "q_sign": 1, "weight_sum_reg": 10.0},
}
#: config name -> changes to :data:`BASE` (``policy_kwargs`` entries are merged)
CONFIGS: dict[str, dict[str, Any]] = {
    "base": {},
    "bs256": {"batch_size": 256},
    "bs512": {"batch_size": 512},
    "gamma98": {"gamma": 0.98},
    "tui1000": {"target_update_interval": 1000},
    "tf4": {"train_freq": 4, "gradient_steps": 2, "target_update_interval": 500},
    "gn1": {"max_grad_norm": 1.0},
    "h800": {"policy_kwargs": {"net_arch": [800]}},  # the paper's hidden size
}
TIMESTEPS, EVAL_FREQ, EVAL_EPISODES, LATE = 50_000, 2500, 10, 25_000


def hyperparameters(config: str) -> dict[str, Any]:
    """:data:`BASE` with the changes of ``config``."""
    changes = dict(CONFIGS[config])
    policy_kwargs = {**BASE["policy_kwargs"], **changes.pop("policy_kwargs", {})}
    return {**BASE, **changes, "policy_kwargs": policy_kwargs}


def train(config: str, seed: int) -> dict[str, Any]:
    """Train one agent of ``config`` and return its evaluation curve ``[[step, mean return], ...]``."""
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_snn import DDQN

    th.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=seed + 1000)
    model = DDQN("CVTCPolicy", env, seed=seed, verbose=0, **hyperparameters(config))
    curve: list[list[float]] = []

    class Evaluate(BaseCallback):
        """Mean deterministic return every ``EVAL_FREQ`` steps (no files, unlike ``EvalCallback``)."""

        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_FREQ == 0:
                mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True)
                curve.append([self.num_timesteps, round(float(mean), 1)])
            return True

    start = time.perf_counter()
    model.learn(TIMESTEPS, callback=Evaluate())
    return {"name": config, "seed": seed, "minutes": round((time.perf_counter() - start) / 60, 1), "curve": curve}


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """Stability figures of one run's curve."""
    late = [r for t, r in run["curve"] if t > LATE]
    return {"config": run["name"], "seed": run["seed"], "changes": CONFIGS.get(run["name"]),
            "max": max(r for _, r in run["curve"]), "late_mean": round(sum(late) / len(late), 1),
            "late_at_475": f"{sum(r >= 475 for r in late)}/{len(late)}", "minutes": run["minutes"],
            "curve": run["curve"]}


def read_runs() -> list[dict[str, Any]]:
    """Every finished run in :data:`LOGS`."""
    runs = []
    for log in sorted(LOGS.glob("*.log")):
        runs += [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", choices=sorted(CONFIGS), default=["base", "bs256"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[3, 4])
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (one core each)")
    parser.add_argument("--summary", action="store_true", help="only write the results record from the logs")
    parser.add_argument("--run", nargs=2, metavar=("CONFIG", "SEED"), help=argparse.SUPPRESS)  # one run, in a child
    args = parser.parse_args()
    if args.run:
        print(json.dumps(train(args.run[0], int(args.run[1]))), flush=True)
        return
    if not args.summary:
        LOGS.mkdir(parents=True, exist_ok=True)

        def run(item: tuple[str, int]) -> None:
            log = LOGS / f"{item[0]}_{item[1]}.log"
            if log.is_file() and any(line.startswith("{") for line in log.read_text().splitlines()):
                return
            with log.open("w") as out:
                subprocess.run([sys.executable, __file__, "--run", item[0], str(item[1])], stdout=out,
                               stderr=subprocess.STDOUT, check=False, cwd=ROOT)

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(run, [(config, seed) for config in args.config for seed in args.seeds]))
    rows = [summarise(run) for run in read_runs()]
    for row in rows:
        print(f"{row['config']:8s} seed {row['seed']}: max {row['max']:6.1f}, late mean {row['late_mean']:6.1f}, "
              f"late evaluations >= 475: {row['late_at_475']}")
    write_result("cvtc_cartpole_sweep", {
        "benchmark": "cvtc_cartpole_sweep",
        "title": "DDQN + CVTC on CartPole-v1: training stability per setting",
        "command": "python benchmarks/bench_cvtc_cartpole_sweep.py --config ... --seeds ...; then --summary",
        "machine": machine("cpu"),
        "protocol": f"{TIMESTEPS} steps, 1 thread, {EVAL_EPISODES} deterministic episodes every {EVAL_FREQ} steps; "
                    f"'late' = evaluations after {LATE} steps",
        "base": BASE,
        "rows": rows,
    })


if __name__ == "__main__":
    main()
