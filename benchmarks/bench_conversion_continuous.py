"""Converted continuous actors on Pendulum-v1: TD3 and SAC teachers -> integrate-and-fire actors.

    .venv/bin/python benchmarks/bench_conversion_continuous.py            # -> benchmarks/out/results/conversion_pendulum.json
    .venv/bin/python benchmarks/bench_conversion_continuous.py --episodes 5 --timesteps 16 64 --algos td3

Teachers are trained with rl_zoo3's tuned Pendulum-v1 settings (``hyperparams/td3.yml`` and ``sac.yml``,
20k steps each) and cached under ``benchmarks/out/pendulum_teachers/`` (the same teachers as
``bench_sdn_continuous.py``'s are reused when they exist). Each is converted once with the default method
(IF neurons, subtractive reset, 99.9th-percentile normalisation, robust readout; 2 000 calibration frames
played by the teacher), then every ``T`` is run with the membranes reset before every action and with
them carried over between actions (reset at episode start).

Every setting plays the same ``--episodes`` episodes (episode ``i`` seeded ``--seed + i``), as do the
teacher and a uniformly random policy, so returns are paired episode by episode. Figures per setting:
mean return, return normalised between the random policy (0) and the teacher (1), the paired return gap
to the teacher, mean |action error| / action range per step (against the teacher's action on the states
the SNN meets), SynOps per action and the first layer's dense MACs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.noise import NormalActionNoise

import sb3_snn
from sb3_snn.common.evaluation import play_episodes
from sb3_snn.common.models import load_model
from sb3_snn.conversion import extract_network
from sb3_snn.conversion.evaluation import ConversionResult, evaluate_conversion, evaluate_source

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_conversion_common import write_record

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "pendulum_teachers"
RESULT = ROOT / "benchmarks" / "results" / "conversion_pendulum.json"
ENV_ID = "Pendulum-v1"
TARGET = "converted TD3 and SAC actors at T <= 64 reach >= 90 % of the teacher's normalised return on Pendulum-v1"
#: rl_zoo3 2.x hyperparams/td3.yml and sac.yml, section Pendulum-v1.
ZOO: dict[str, dict[str, Any]] = {
    "td3": {"n_timesteps": 20_000, "gamma": 0.98, "buffer_size": 200_000, "learning_starts": 10_000,
            "noise_std": 0.1, "gradient_steps": 1, "train_freq": 1, "learning_rate": 1e-3,
            "policy_kwargs": {"net_arch": [400, 300]}},
    "sac": {"n_timesteps": 20_000, "learning_rate": 1e-3},
}


def train_teacher(algo: str, seed: int = 0) -> Path:
    """Train (or reuse) the ``algo`` teacher of seed ``seed`` with :data:`ZOO`'s settings; returns its zip.

    :param algo: ``"td3"`` or ``"sac"``
    :param seed: training seed
    """
    path = OUT / f"{algo}_seed{seed}.zip"
    if path.exists():
        return path
    shared = OUT.parent / "sdn_continuous" / f"{algo}_teacher_seed{seed}.zip"  # bench_sdn_continuous.py's, same settings
    if shared.exists():
        return shared
    settings = dict(ZOO[algo])
    steps = settings.pop("n_timesteps")
    env = gym.make(ENV_ID)
    if algo == "td3":
        std = settings.pop("noise_std")
        settings["action_noise"] = NormalActionNoise(np.zeros(1), std * np.ones(1))
        model: Any = TD3("MlpPolicy", env, seed=seed, device="cpu", **settings)
    else:
        model = SAC("MlpPolicy", env, seed=seed, device="cpu", **settings)
    start = time.perf_counter()
    model.learn(steps)
    OUT.mkdir(parents=True, exist_ok=True)
    model.save(path)
    print(f"{algo}: trained {steps} steps in {time.perf_counter() - start:.0f} s -> {path}")
    return path


def random_scores(env: gym.Env, n_episodes: int, seed: int) -> list[float]:
    """Returns of a uniformly random policy on the same episode seeds."""
    space = env.action_space
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        return rng.uniform(space.low, space.high).astype(np.float32)  # type: ignore[attr-defined]

    return play_episodes(act, env, n_episodes, seed=seed).scores


def row(algo: str, result: ConversionResult, teacher: list[float], random: list[float]) -> dict[str, Any]:
    """One table row: return, normalised return, paired gap, action error, SynOps."""
    scores = np.asarray(result.scores)
    base, top = float(np.mean(random)), float(np.mean(teacher))
    gap = scores - np.asarray(teacher)
    ann = result.readout == "ann"
    return {
        "teacher": algo.upper(), "T": "-" if ann else result.timesteps,
        "carry_over": "-" if ann else result.carry_over,
        "return": round(float(scores.mean()), 1), "std": round(float(scores.std()), 1), "episodes": len(scores),
        "normalised return": round((float(scores.mean()) - base) / (top - base), 4),
        "paired gap to teacher": round(float(gap.mean()), 1),
        "gap s.e.": round(float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else 0.0, 1),
        "action error / range": round(float(result.action_error or 0.0), 5),
        "SynOps/action": None if ann else float(f"{result.synops_per_action:.4g}"),
        "input MACs/action": None if ann else float(f"{result.input_macs_per_action:.4g}"),
        "ANN MACs": None if ann else result.ann_macs,
        "s/action": round(result.seconds_per_action, 5),
    }


def run(
    algos: list[str], timesteps: list[int], n_episodes: int, seed: int, save: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Train or reuse the teachers, convert, evaluate every (T, carry-over) setting; returns the record's figures.

    :param save: called with the figures so far after every setting (a stopped run keeps what it measured)
    """
    rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    teachers: dict[str, Any] = {}
    figures = {"rows": rows, "details": details, "teachers": teachers}
    prepared = []
    for algo in algos:
        path = train_teacher(algo)
        model = load_model(path, algo=algo)
        env = gym.make(ENV_ID)
        teacher = evaluate_source(model, env, n_episodes, seed=seed)
        random = random_scores(env, n_episodes, seed)
        start = time.perf_counter()
        policy = sb3_snn.convert(model, env=gym.make(ENV_ID), seed=0, timesteps=max(timesteps))
        convert_seconds = time.perf_counter() - start
        teachers[algo] = {"path": str(path.relative_to(ROOT)), "scales": policy.scales,
                          "layers": policy.layer_names, "convert_seconds": round(convert_seconds, 2),
                          "teacher_return": float(np.mean(teacher.scores)), "random_return": float(np.mean(random))}
        rows.append(row(algo, teacher, teacher.scores, random))
        print(rows[-1], flush=True)
        # the teacher's deterministic action, without SB3's per-call overhead (equal to predict's, tested)
        prepared.append((algo, policy, extract_network(model).act, env, teacher.scores, random))
    for steps in timesteps:  # every teacher at a T before the next T: a stopped run has comparable rows
        for carry in (False, True):
            for algo, policy, reference, env, teacher_scores, random in prepared:
                result = evaluate_conversion(policy.with_settings(timesteps=steps, carry_over=carry), reference, env,
                                             n_episodes, seed=seed)
                rows.append(row(algo, result, teacher_scores, random))
                details.append({"teacher": algo, **result.as_dict()})
                print(rows[-1], flush=True)
                save(figures)
    return figures


def headline(rows: list[dict[str, Any]]) -> str:
    """Smallest T <= 64 reaching 90 % of the normalised return (else the best) per teacher and carry-over
    setting; the target is met when every teacher reaches it in one of the two settings."""
    parts = []
    met = True
    for algo in sorted({r["teacher"] for r in rows}):
        reached = False
        for carry in (False, True):
            candidates = [r for r in rows if r["teacher"] == algo and r["carry_over"] is carry and r["T"] != "-"
                          and r["T"] <= 64]
            if not candidates:
                continue
            best = min(candidates, key=lambda r: r["T"] if r["normalised return"] >= 0.9 else 10**9)
            if best["normalised return"] < 0.9:
                best = max(candidates, key=lambda r: r["normalised return"])
            reached = reached or best["normalised return"] >= 0.9
            parts.append(f"{algo} {'carry-over' if carry else 'reset'}: {100 * best['normalised return']:.1f} % at "
                         f"T={best['T']}")
        met = met and reached
    return "; ".join(parts) + (" -> met" if met else " -> missed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algos", nargs="+", default=["td3", "sac"], choices=sorted(ZOO))
    parser.add_argument("--timesteps", nargs="+", type=int, default=[16, 32, 64, 128])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1000, help="episode i is seeded seed + i (teacher, random, SNN)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    th.set_num_threads(1)  # one small network per step: threads only add synchronisation (and fight on shared cores)
    start = time.perf_counter()
    command = ".venv/bin/python benchmarks/bench_conversion_continuous.py " + " ".join(sys.argv[1:])

    def save(record: dict[str, Any]) -> None:
        write_record(args.out, {
            "benchmark": "conversion_pendulum",
            "title": "Conversion of continuous actors: TD3 / SAC -> IF SNN on Pendulum-v1 (T sweep, carry-over)",
            "command": command.strip(), "target": TARGET, "headline": headline(record["rows"]),
            "notes": [
                "normalised return = (SNN - random) / (teacher - random), means over the same episode seeds",
                "paired gap = mean over episodes of (SNN return - teacher return) on the same seed, with its s.e.",
                "action error = mean |a_SNN - a_teacher| / (high - low) per step, on the states the SNN meets",
                "default method: IF, subtractive reset, p = 99.9 percentile, robust readout, rounding floor; output "
                "layer unnormalised (lambda_L = 1), tanh + SB3 rescaling on the readout",
                "carry-over: hidden membranes kept between actions (clipped at 0 from below), zeroed at episode start",
                f"wall time {time.perf_counter() - start:.0f} s",
            ],
            **record,
        })

    run(args.algos, args.timesteps, args.episodes, args.seed, save)


if __name__ == "__main__":
    main()
