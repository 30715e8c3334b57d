"""SDN on CartPole-v1: a spiking student from a DQN teacher and from a PPO teacher.

Teachers are trained first with the runner (benchmarks/out is git-ignored)::

    sb3-snn train --algo dqn --env CartPole-v1 -conf sb3_snn/configs/zoo/dqn.yml -f benchmarks/out/sdn/logs --seed 0 \\
        --eval-freq 5000 --eval-episodes 10
    sb3-snn train --algo ppo --env CartPole-v1 -conf sb3_snn/configs/zoo/ppo.yml -f benchmarks/out/sdn/logs --seed 0 \\
        --eval-freq 2000 --eval-episodes 10 -params policy_kwargs:"dict(net_arch=[256, 256])"
    python benchmarks/bench_sdn_cartpole.py
    python benchmarks/bench_sdn_cartpole.py --latency-only   # only the latency figures, into the same JSON

Figures: teacher and student scores, agreement, parameter bytes and their ratio, the environment steps
the student needed to reach 95 % of the teacher vs the steps DQN needed from scratch (the DQN
teacher's own evaluation curve), per-action latency, and distillation vs DQN gradient steps per second.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_rows
from bench_sdn_common import (
    latency_comparison,
    latency_fields,
    score_lines,
    write_latency_record,
    latency_text,
    machine,
    play,
    steps_per_second,
)

from sb3_snn import SDN
from sb3_snn.sdn import Teacher, load_teacher

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "benchmarks/out/sdn/logs"


def student_settings() -> dict:
    """The CartPole-v1 section of sb3_snn/configs/zoo/sdn.yml, as SDN constructor arguments."""
    section = dict(yaml.safe_load((ROOT / "sb3_snn/configs/zoo/sdn.yml").read_text())["CartPole-v1"])
    section.pop("n_timesteps", None)
    section["policy_kwargs"] = eval(section["policy_kwargs"], {"dict": dict})
    return section


def distil(teacher_path: Path, args: argparse.Namespace) -> dict:
    """Train one student against one teacher, evaluating every ``eval_freq`` steps."""
    teacher_model = load_teacher(teacher_path)
    teacher = Teacher(teacher_model)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=args.eval_seed)
    teacher_eval = play(teacher_model, eval_env, args.final_episodes)
    target = 0.95 * teacher_eval["mean"]
    settings = student_settings()
    policy = settings.pop("policy")
    student = SDN(policy, make_vec_env("CartPole-v1", n_envs=1, seed=args.seed), teacher=teacher_model,
                  seed=args.seed, device=args.device, **settings)
    curve, reached, start = [], None, time.perf_counter()
    while student.num_timesteps < args.steps:
        student.learn(args.eval_freq, reset_num_timesteps=False)
        score = play(student, make_vec_env("CartPole-v1", n_envs=1, seed=args.eval_seed + 1), args.eval_episodes)["mean"]
        curve.append([student.num_timesteps, score])
        if reached is None and score >= target:
            reached = student.num_timesteps
    seconds = time.perf_counter() - start
    final = play(student, make_vec_env("CartPole-v1", n_envs=1, seed=args.eval_seed), args.final_episodes, teacher=teacher)
    student_bytes = student.policy.parameter_bytes()
    row = {
        "teacher_path": str(teacher_path.relative_to(ROOT)), "teacher_algo": type(teacher_model).__name__,
        "teacher": teacher_eval, "student": final, "student_over_teacher": final["mean"] / teacher_eval["mean"],
        "student_bytes": student_bytes,
        "teacher_bytes_acting": teacher.parameter_bytes(), "teacher_bytes_all": teacher.parameter_bytes(acting_only=False),
        "size_ratio_acting": teacher.parameter_bytes() / student_bytes,
        "size_ratio_all": teacher.parameter_bytes(acting_only=False) / student_bytes,
        "student_curve": curve, "student_steps_to_95pct": reached, "distillation_seconds": seconds,
        "student_updates": student._n_updates, "student_settings": {**settings, "policy": policy},
    }
    if student.device.type == "cpu":  # the same comparison as --latency-only
        latency = latency_comparison(student, teacher_model, eval_env.reset(), args.latency_repeats)
        row.update(latency_fields(latency, "latency_ratio", "latency_forward_ratio"))
    return row


def dqn_from_scratch(log_dir: Path, target: float) -> dict:
    """The DQN teacher's evaluation curve (rl_zoo3 evaluations.npz): when it first reached ``target``."""
    data = np.load(log_dir / "evaluations.npz")
    means = data["results"].mean(axis=1)
    hits = [int(t) for t, m in zip(data["timesteps"], means, strict=True) if m >= target]
    return {"curve": [[int(t), float(m)] for t, m in zip(data["timesteps"], means, strict=True)],
            "first_step_at_target": hits[0] if hits else None,
            "evals_at_target": len(hits), "evals": len(means), "target": target}


def speed(args: argparse.Namespace, dqn_teacher: Path) -> dict:
    """Distillation gradient steps/s vs DQN gradient steps/s (zoo config: 256x256, batch 64)."""
    env = gym.make("CartPole-v1")
    settings = student_settings()
    policy = settings.pop("policy")
    settings.update(learning_starts=1000, batch_size=64)
    student = SDN(policy, env, teacher=str(dqn_teacher), seed=0, device=args.device, **settings)
    student.learn(1100)
    dqn = DQN("MlpPolicy", env, learning_starts=1000, batch_size=64, seed=0, device=args.device,
              policy_kwargs=dict(net_arch=[256, 256]), train_freq=10_000)
    dqn.learn(1100)
    return {
        "distillation_steps_per_s": steps_per_second(lambda n: student.train(n, 64), args.speed_steps),
        "dqn_steps_per_s": steps_per_second(lambda n: dqn.train(n, 64), args.speed_steps), "batch_size": 64,
    }


def latency_only(args: argparse.Namespace) -> None:
    """Measure only the per-action latency (student vs each teacher, :func:`latency_comparison`) and
    write it into the existing JSON, keeping its other figures.

    The student is untrained, of the zoo config's shape: its latency does not depend on its weights
    (every operation is dense).
    """
    record = json.loads(args.out.read_text()) if args.out.is_file() else {
        "command": shlex.join(["python", *sys.argv]), "machine": machine(), "env": "CartPole-v1", "teachers": {}}
    env = make_vec_env("CartPole-v1", n_envs=1, seed=args.eval_seed)
    obs = env.reset()
    settings = student_settings()
    th.manual_seed(args.seed)
    student = SDN(settings["policy"], env, seed=args.seed, device="cpu", buffer_size=1000,
                  policy_kwargs=settings["policy_kwargs"])
    lines, measured = [], {}
    for name, path in (("dqn", args.dqn_teacher.resolve()), ("ppo", args.ppo_teacher.resolve())):
        latency = latency_comparison(student, load_teacher(path), obs, args.latency_repeats)
        latency["teacher_path"] = str(path.relative_to(ROOT))
        measured[name] = latency
        record["teachers"].setdefault(name, {}).update(latency_fields(latency, "latency_ratio", "latency_forward_ratio"))
        lines.append(latency_text(f"{name} teacher", latency))
        print(name, json.dumps(latency), flush=True)
    command = shlex.join(["python", *sys.argv])
    record["latency"] = {"command": command, "machine": machine(), "teachers": measured}
    write_latency_record(record, score_lines(record.get("teachers", {})), lines, command, args.out)


def main() -> None:
    """Run the benchmark and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dqn-teacher", type=Path, default=LOGS / "dqn/CartPole-v1_1/best_model.zip")
    parser.add_argument("--ppo-teacher", type=Path, default=LOGS / "ppo/CartPole-v1_1/best_model.zip")
    parser.add_argument("--steps", type=int, default=20_000, help="student environment steps")
    parser.add_argument("--eval-freq", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--final-episodes", type=int, default=20)
    parser.add_argument("--speed-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seed", type=int, default=123)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/results/sdn_cartpole.json")
    parser.add_argument("--latency-only", action="store_true",
                        help="measure only the per-action latency (untrained student) and update --out's latency figures")
    parser.add_argument("--latency-repeats", type=int, default=500, help="timed calls of each candidate")
    args = parser.parse_args()
    th.set_num_threads(1)
    if args.latency_only:
        latency_only(args)
        return
    record = {"command": shlex.join(["python", *sys.argv]), "machine": machine(), "env": "CartPole-v1", "teachers": {}}
    for name, path in (("dqn", args.dqn_teacher.resolve()), ("ppo", args.ppo_teacher.resolve())):
        record["teachers"][name] = distil(path, args)
        print(name, json.dumps({k: v for k, v in record["teachers"][name].items() if "curve" not in k}, default=str))
    target = 0.95 * record["teachers"]["dqn"]["teacher"]["mean"]
    record["dqn_from_scratch"] = dqn_from_scratch(args.dqn_teacher.resolve().parent, target)
    record["speed"] = speed(args, args.dqn_teacher.resolve())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, default=str))
    save_rows(args.out.stem, record)
    print(json.dumps({"dqn_from_scratch": record["dqn_from_scratch"]["first_step_at_target"], "speed": record["speed"]}))


if __name__ == "__main__":
    main()
