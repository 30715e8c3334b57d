"""SDN on Pong: a spiking student distilled from the PPO teacher in ../shared/fixtures/ppo_pong.

Rows: the main setting (frames one per step, soft+hard CE), the stacked-channels ablation and the
loss ablation (MSE variants, hard CE only). Each row distils for ``--steps`` student environment steps
and plays ``--eval-episodes`` greedy episodes (env seed 123, as the fixture's eval.json). On 2 shared CPU
cores this is slow: the steps used are recorded in the JSON. On a GPU: ``--device cuda``.

    python benchmarks/bench_sdn_pong.py --steps 20000 --eval-episodes 1
    python benchmarks/bench_sdn_pong.py --device cuda --steps 200000 --eval-episodes 10   # the full run
    python benchmarks/bench_sdn_pong.py --latency-only   # per-action latency on the CPU only, into the same JSON
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import ale_py
import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

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
gym.register_envs(ale_py)
ENV_ID = "PongNoFrameskip-v4"
#: row name -> (policy_kwargs overrides, SDN overrides)
ROWS = {
    "frames+soft_hard_ce": ({}, {}),
    "stacked+soft_hard_ce": ({"encoding": "constant", "n_steps": 4}, {}),
    "frames+tdbn+soft_hard_ce": ({"norm": "tdbn"}, {}),  # sb3_snn/configs/zoo/sdn.yml's Pong setting
    "stacked+tdbn+soft_hard_ce": ({"encoding": "constant", "n_steps": 4, "norm": "tdbn"}, {}),
    "frames8+soft_hard_ce": ({"n_steps": 8}, {}),  # 2 steps per frame
    "frames+soft_hard_ce+lr3e-4": ({}, {"learning_rate": 3e-4}),
    "frames+hard_ce": ({}, {"distillation_loss": "hard_ce"}),
    "frames+mse_softmax": ({}, {"distillation_loss": "mse_softmax"}),
    "frames+mse_minmax": ({}, {"distillation_loss": "mse_minmax"}),
    "frames+mse_onehot": ({}, {"distillation_loss": "mse_onehot"}),
    # the loss ablation on the zoo config's frames+tdBN student
    "frames+tdbn+hard_ce": ({"norm": "tdbn"}, {"distillation_loss": "hard_ce"}),
    "frames+tdbn+mse_softmax": ({"norm": "tdbn"}, {"distillation_loss": "mse_softmax"}),
}
PAPER_TABLE1 = {"teacher_kb": 892, "student_kb": [5, 50], "note": "paper: ~200x smaller, student score close to teacher"}


def make_env(seed: int) -> VecTransposeImage:
    """Pong as the fixture teacher was trained: SB3 AtariWrapper, 4 stacked frames, channel-first."""
    return VecTransposeImage(VecFrameStack(make_atari_env(ENV_ID, n_envs=1, seed=seed), n_stack=4))


def row_policy_kwargs(name: str) -> dict:
    """The student's architecture of a row (sb3_snn/configs/zoo/sdn.yml's Pong section plus the row's overrides)."""
    return dict(conv_arch=[(8, 8, 4), (8, 4, 2), (16, 3, 2)], net_arch=[32], **ROWS[name][0])


def latency_only(args: argparse.Namespace) -> None:
    """Measure only the per-action latency on the CPU (student of each row's shape vs the teacher,
    :func:`latency_comparison`, 1 torch thread) and write it into the existing JSON, keeping the rest
    (the rows' scores are untouched; their ``latency_*`` entries are updated).

    The students are untrained (default initialisation): their latency does not depend on the weights
    (every operation is dense). Rows of the same architecture share one measurement; the architectures
    of ``--latency-extra`` (sb3_snn/configs/zoo/sdn.yml's tdBN setting by default) are measured too, recorded under
    ``latency`` only.
    """
    record = json.loads(args.out.read_text()) if args.out.is_file() else {
        "command": shlex.join(["python", *sys.argv]), "machine": machine(), "env": ENV_ID, "rows": {}}
    teacher_model = load_teacher(args.teacher, device="cpu")
    env = make_env(0)
    obs = env.reset()
    rows = list(record.get("rows") or {}) or args.rows.split(",")
    extra = [name for name in args.latency_extra.split(",") if name and name not in rows]
    measured: dict[str, dict] = {}
    lines = []
    for name in [*rows, *extra]:
        policy_kwargs = row_policy_kwargs(name)
        key = json.dumps(policy_kwargs, sort_keys=True)
        if key not in measured:
            th.manual_seed(args.seed)
            student = SDN("SDNCnnPolicy", env, buffer_size=100, policy_kwargs=policy_kwargs, seed=args.seed, device="cpu")
            measured[key] = {**latency_comparison(student, teacher_model, obs, args.latency_repeats),
                             "policy_kwargs": policy_kwargs, "rows": [], "extra": []}
            print(name, json.dumps(measured[key], default=str), flush=True)
        latency = measured[key]
        latency["rows" if name in rows else "extra"].append(name)
        if name in rows:
            row = record.setdefault("rows", {}).setdefault(name, {})
            row.update(latency_fields(latency, "latency_speedup", "latency_forward_speedup"))
    for latency in measured.values():
        encoding = latency["policy_kwargs"].get("encoding", "frames")
        norm = "+tdBN" if latency["policy_kwargs"].get("norm") else ""
        which = (f"rows {'/'.join(latency['rows'])}" if latency["rows"]
                 else f"shape of {'/'.join(latency['extra'])} (no score row)")
        label = f"{encoding}{norm} student (T={latency['student_n_steps']}, untrained), {which}"
        lines.append(latency_text(label, latency))
    command = shlex.join(["python", *sys.argv])
    record["latency_ms_teacher"] = next(iter(measured.values()))["teacher_predict_ms"]
    record["latency"] = {"command": command, "machine": machine(), "teacher_path": args.teacher,
                         "students": list(measured.values())}
    write_latency_record(record, score_lines(record.get("rows", {})), lines, command, args.out)


def run_row(name: str, teacher_model, args: argparse.Namespace) -> dict:
    """Distil one student and evaluate it."""
    _, sdn_overrides = ROWS[name]
    teacher = Teacher(teacher_model)
    settings = {**dict(temperature=2.0, alpha=0.9, learning_rate=1e-3, buffer_size=args.buffer_size,
                       learning_starts=1000, batch_size=32, train_freq=4, gradient_steps=1), **sdn_overrides}
    policy_kwargs = row_policy_kwargs(name)
    student = SDN("SDNCnnPolicy", make_env(args.seed), teacher=teacher_model, policy_kwargs=policy_kwargs,
                  seed=args.seed, device=args.device, **settings)
    start = time.perf_counter()
    student.learn(args.steps)
    seconds = time.perf_counter() - start
    result = play(student, make_env(args.eval_seed), args.eval_episodes, teacher=teacher, max_steps=args.max_eval_steps)
    row = {
        "steps": args.steps, "seconds": seconds, "updates": student._n_updates,
        "settings": {**settings, "policy_kwargs": policy_kwargs}, "student": result,
        "student_bytes": student.policy.parameter_bytes(),
        "distillation_steps_per_s": steps_per_second(lambda n: student.train(n, 32), 50),
    }
    if student.device.type == "cpu":  # the same comparison as --latency-only (on a GPU run: measure it with that)
        latency = latency_comparison(student, teacher_model, make_env(0).reset(), args.latency_repeats)
        row.update(latency_fields(latency, "latency_speedup", "latency_forward_speedup"))
    return row


def main() -> None:
    """Run the rows and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="../shared/fixtures/ppo_pong/ppo_pong.zip")
    parser.add_argument("--steps", type=int, default=20_000, help="student environment steps per row")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from {list(ROWS)}")
    parser.add_argument("--eval-episodes", type=int, default=1)
    parser.add_argument("--teacher-episodes", type=int, default=0, help="0: use the fixture's eval.json")
    parser.add_argument("--max-eval-steps", type=int, default=30_000)
    parser.add_argument("--buffer-size", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seed", type=int, default=123)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/results/sdn_pong.json")
    parser.add_argument("--latency-only", action="store_true",
                        help="measure only the CPU per-action latency (untrained students of --out's rows, or of --rows) "
                             "and update --out's latency figures")
    parser.add_argument("--latency-repeats", type=int, default=500, help="timed calls of each candidate")
    parser.add_argument("--latency-extra", default="frames+tdbn+soft_hard_ce",
                        help="with --latency-only: comma-separated rows of ROWS whose architecture is measured too, "
                             "without a score row")
    args = parser.parse_args()
    if args.device == "cpu" or args.latency_only:
        th.set_num_threads(1)
    if args.latency_only:
        latency_only(args)
        return
    teacher_model = load_teacher(args.teacher, device=args.device)
    teacher = Teacher(teacher_model)
    record = {
        "command": shlex.join(["python", *sys.argv]), "machine": machine(), "env": ENV_ID, "device": args.device,
        "teacher_path": args.teacher, "teacher_bytes_acting": teacher.parameter_bytes(),
        "teacher_bytes_all": teacher.parameter_bytes(acting_only=False),
        "paper_table1": PAPER_TABLE1, "rows": {},
    }
    fixture_eval = Path(args.teacher).resolve().parent / "eval.json"
    if args.teacher_episodes:
        record["teacher"] = play(teacher_model, make_env(args.eval_seed), args.teacher_episodes)
    elif fixture_eval.is_file():
        rewards = json.loads(fixture_eval.read_text())["rewards"]
        record["teacher"] = {"mean": float(np.mean(rewards)), "std": float(np.std(rewards)), "source": str(fixture_eval)}
    for name in args.rows.split(","):
        row = run_row(name, teacher_model, args)
        row["size_ratio_acting"] = record["teacher_bytes_acting"] / row["student_bytes"]
        record["rows"][name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "settings"}, default=str), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2, default=str))
    save_rows(args.out.stem, record)


if __name__ == "__main__":
    main()
