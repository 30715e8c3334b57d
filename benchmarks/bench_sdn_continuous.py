"""SDN with continuous actions on Pendulum-v1: spiking students distilled from a SAC and a TD3 teacher.

Teachers are trained with rl_zoo3's tuned Pendulum-v1 settings (``hyperparams/sac.yml`` and ``td3.yml``,
20k steps each); each student is distilled with the ``Pendulum-v1`` section of
``sb3_snn/configs/zoo/sdn.yml``. Teacher, student and a uniformly random policy then play the same
episodes (paired: episode ``i`` of each starts from seed ``eval_seed + i``), and the student's return is
normalised between the random policy (0) and the teacher (1)::

    nice -n 10 python benchmarks/bench_sdn_continuous.py                      # both teachers, 30 episodes
    nice -n 10 python benchmarks/bench_sdn_continuous.py --teachers sac --student-steps 10000

Teachers and students go to ``benchmarks/out/sdn_continuous`` (git-ignored; a teacher zip already there is
reused); the record goes to ``benchmarks/out/results/sdn_pendulum.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_rows
from bench_sdn_common import machine

from sb3_snn import SDN
from sb3_snn.sdn import load_teacher

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "Pendulum-v1"


def train_teacher(algo: str, folder: Path, seed: int = 0) -> Path:
    """Train a SAC or TD3 teacher with rl_zoo3's Pendulum-v1 hyperparameters (reused when the zip exists).

    :param algo: ``"sac"`` or ``"td3"``
    :param folder: where the zip goes
    :param seed: training seed
    """
    path = folder / f"{algo}_teacher_seed{seed}.zip"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    env = gym.make(ENV_ID)
    model: BaseAlgorithm
    if algo == "sac":  # rl_zoo3 hyperparams/sac.yml, Pendulum-v1
        model = SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, device="cpu")
    elif algo == "td3":  # rl_zoo3 hyperparams/td3.yml, Pendulum-v1
        n_actions = int(np.prod(env.action_space.shape))
        model = TD3("MlpPolicy", env, gamma=0.98, buffer_size=200_000, learning_starts=10_000,
                    action_noise=NormalActionNoise(np.zeros(n_actions), 0.1 * np.ones(n_actions)),
                    gradient_steps=1, train_freq=1, learning_rate=1e-3, policy_kwargs={"net_arch": [400, 300]},
                    seed=seed, device="cpu")
    else:
        raise ValueError(f"unknown teacher algorithm {algo!r}; expected 'sac' or 'td3'")
    start = time.perf_counter()
    model.learn(20_000)
    model.save(path)
    (folder / f"{algo}_teacher_seed{seed}.seconds").write_text(f"{time.perf_counter() - start:.1f}\n")
    return path


def student_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Pendulum-v1 section of sb3_snn/configs/zoo/sdn.yml as SDN constructor arguments.

    :param overrides: settings that replace the section's
    """
    section = dict(yaml.safe_load((ROOT / "sb3_snn/configs/zoo/sdn.yml").read_text())[ENV_ID])
    section.pop("n_timesteps", None)
    if isinstance(section.get("policy_kwargs"), str):
        section["policy_kwargs"] = eval(section["policy_kwargs"], {"dict": dict})
    section.update(overrides or {})
    return section


def episode_returns(act: Any, n_episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of ``n_episodes`` episodes, episode ``i`` reset with seed ``seed + i``.

    :param act: a function from one observation to one action
    :param n_episodes: episodes to play
    :param seed: seed of the first episode
    """
    env = gym.make(ENV_ID)
    returns = []
    for index in range(n_episodes):
        obs, _ = env.reset(seed=seed + index)
        env.action_space.seed(seed + index)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs, env))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def deterministic(model: Any) -> Any:
    """``model`` as a function of one observation to its deterministic action."""
    return lambda obs, env: model.predict(obs, deterministic=True)[0]


def run(algo: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or reuse) a teacher, distil a student, evaluate all three policies on paired seeds."""
    folder = ROOT / "benchmarks/out/sdn_continuous"
    teacher_path = train_teacher(algo, folder, seed=args.seed)
    teacher = load_teacher(teacher_path)
    settings = student_settings(json.loads(args.overrides) if args.overrides else None)
    policy = settings.pop("policy", "SDNPolicy")
    start = time.perf_counter()
    student = SDN(policy, gym.make(ENV_ID), teacher=teacher, seed=args.seed, device="cpu", **settings)
    student.learn(args.student_steps)
    seconds = time.perf_counter() - start
    student.save(folder / f"sdn_{algo}_student_seed{args.seed}.zip")
    teacher_returns = episode_returns(deterministic(teacher), args.episodes, args.eval_seed)
    student_returns = episode_returns(deterministic(student), args.episodes, args.eval_seed)
    random_returns = episode_returns(lambda obs, env: env.action_space.sample(), args.episodes, args.eval_seed)
    t, s, r = (float(np.mean(x)) for x in (teacher_returns, student_returns, random_returns))
    normalised = (s - r) / (t - r)
    per_seed = [
        {"seed": args.eval_seed + i, "teacher": teacher_returns[i], "student": student_returns[i],
         "random": random_returns[i]}
        for i in range(args.episodes)
    ]
    print(f"{algo}: teacher {t:.1f}, student {s:.1f}, random {r:.1f}, normalised {normalised:.3f} "
          f"(distillation {seconds:.0f} s)", flush=True)
    return {
        "teacher": {"algo": algo, "path": str(teacher_path.relative_to(ROOT)), "mean_return": t,
                    "std_return": float(np.std(teacher_returns)), "parameter_bytes": _teacher_bytes(teacher)},
        "student": {"mean_return": s, "std_return": float(np.std(student_returns)), "steps": args.student_steps,
                    "distillation_seconds": seconds, "settings": {**settings, "policy": policy},
                    "parameter_bytes": student.policy.parameter_bytes()},
        "random": {"mean_return": r, "std_return": float(np.std(random_returns))},
        "normalised_return": normalised,
        "meets_target_95": bool(normalised >= 0.95),
        "per_seed": per_seed,
    }


def _teacher_bytes(model: BaseAlgorithm) -> int:
    from sb3_snn.common.models import parameter_bytes

    return parameter_bytes(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teachers", nargs="+", default=["sac", "td3"], choices=["sac", "td3"])
    parser.add_argument("--student-steps", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seed", type=int, default=1000)
    parser.add_argument("--overrides", default="", help="JSON of SDN settings replacing the zoo section's")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/out/results/sdn_pendulum.json"))
    args = parser.parse_args()
    output = Path(args.output)
    # results of the other teachers already in the file are kept (each records its own command and machine)
    previous = json.loads(output.read_text()).get("results", {}) if output.exists() else {}
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    record: dict[str, Any] = {
        "benchmark": "sdn_pendulum",
        "command": command,
        "machine": machine(),
        "env": ENV_ID,
        "episodes": args.episodes,
        "eval_seeds": [args.eval_seed, args.eval_seed + args.episodes - 1],
        "normalisation": "(student - random) / (teacher - random), mean returns over the same seeds",
        "results": {algo: result for algo, result in previous.items() if algo not in args.teachers},
    }
    for algo in args.teachers:
        record["results"][algo] = {"command": command, "machine": record["machine"], **run(algo, args)}
        output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.output}")
    save_rows(output.stem, record)


if __name__ == "__main__":
    main()
