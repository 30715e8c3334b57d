"""Box-action policies on the NC64C chip model: a converted TD3 actor and an SDN student on Pendulum-v1.

    nice -n 10 .venv/bin/python benchmarks/bench_nc64c_box.py [--quick]

Teacher: the TD3 trained with rl_zoo3's Pendulum-v1 settings by ``benchmarks/bench_conversion_continuous.py``
(``benchmarks/out/pendulum_teachers/td3_seed0.zip``, trained there if missing). Its actor is converted
(``sb3_snn.convert(model, calibration_obs=..., timesteps=T)``, T = 16 and 32) and an SDN student is
distilled from it with the ``Pendulum-v1`` section of ``sb3_snn/configs/zoo/sdn.yml`` for ``--student-steps``
steps (a quick distillation; ``benchmarks/bench_sdn_continuous.py`` runs the full one). Each policy is
compiled for ``nc64c`` at the default widths on 1 000 example states (teacher episodes with Gaussian
action noise, env seeds 1..; 800 calibrate, 200 give the report's figure) and measured on 1 000 held-out
states (env seeds 2 000..): mean and largest ``|action error|`` relative to the action range
(``high - low``) against the float SNN (``reference_simulate``), batched and one observation at a time.
Closed loop: the chip deployment (one observation at a time), the float spiking policy and the teacher
play the same ``--episodes`` episodes (episode ``i`` reset with seed ``1000 + i``).

Rows go to ``benchmarks/records/nc64c.jsonl`` (suite ``nc64c``, experiment ``box``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.records import Row, append_rows

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "Pendulum-v1"
TEACHER = ROOT / "benchmarks" / "out" / "pendulum_teachers" / "td3_seed0.zip"
#: target for the chip's actions: within 5 % of the action range of the float policy's
TARGET = 0.05


def load_teacher() -> Any:
    """The TD3 teacher (trained with rl_zoo3's settings by bench_conversion_continuous.py if missing)."""
    from stable_baselines3 import TD3

    path = TEACHER
    if not path.is_file():
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_conversion_continuous import train_teacher

        path = train_teacher("td3", seed=0)
    return TD3.load(path, device="cpu")


def states(model: Any, n: int, first_seed: int, noise: float = 0.3) -> np.ndarray:
    """``n`` consecutive Pendulum states of the teacher acting with Gaussian noise (std ``noise`` x max action),
    episodes reset with seeds ``first_seed, first_seed + 1, ...``."""
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(first_seed)
    high = env.action_space.high
    out: list[np.ndarray] = []
    episode = 0
    while len(out) < n:
        obs, _ = env.reset(seed=first_seed + episode)
        done = False
        while not done and len(out) < n:
            out.append(obs)
            action = model.predict(obs, deterministic=True)[0] + rng.normal(0.0, noise * high)
            obs, _, terminated, truncated, _ = env.step(np.clip(action, -high, high))
            done = terminated or truncated
        episode += 1
    return np.asarray(out, dtype=np.float64)


def returns(act: Any, episodes: int, seed: int = 1000) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes (episode ``i`` reset with ``seed + i``)."""
    env = gym.make(ENV_ID)
    result = []
    for index in range(episodes):
        obs, _ = env.reset(seed=seed + index)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
        result.append(total)
    return result


def student(model: Any, steps: int, seed: int = 0) -> Any:
    """An SDN student distilled from ``model`` with the zoo config's Pendulum-v1 section for ``steps`` steps."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_sdn_continuous import student_settings

    from sb3_snn import SDN

    settings = student_settings()
    policy = settings.pop("policy", "SDNPolicy")
    agent = SDN(policy, gym.make(ENV_ID), teacher=model, seed=seed, device="cpu", **settings)
    agent.learn(steps)
    return agent


def measure(
    name: str, policy: Any, calibration: np.ndarray, held_out: np.ndarray, teacher: Any, episodes: int
) -> dict[str, Any]:
    """Compile ``policy`` for nc64c; action error vs the float SNN on ``held_out``; closed-loop returns."""
    import warnings

    from sb3_snn import backends

    description = policy.spiking_description()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deployment = backends.load("nc64c").compile(description, calibration)
    span = np.asarray(description.readout["high"]) - np.asarray(description.readout["low"])
    reference = backends.reference_simulate(description, held_out).actions
    batched = deployment.run(held_out)
    single = np.stack([deployment.run(obs) for obs in held_out])
    error = np.abs(batched - reference).reshape(len(held_out), -1) / span
    float_predict = policy.predict(held_out.astype(np.float32), deterministic=True)[0]
    vs_predict = np.abs(batched - float_predict).reshape(len(held_out), -1) / span
    vs_teacher = (
        np.abs(batched - teacher.predict(held_out.astype(np.float32), deterministic=True)[0]).reshape(len(held_out), -1) / span
    )
    chip_returns = returns(lambda obs: deployment.run(obs).astype(np.float32), episodes)
    float_returns = returns(lambda obs: policy.predict(obs, deterministic=True)[0], episodes)
    report = deployment.report().metrics
    result = {
        "network": name,
        "timesteps": description.timesteps,
        "single_shape": list(deployment.run(held_out[0]).shape),
        "batch_shape": list(batched.shape),
        "one_at_a_time_equals_batched": bool(np.array_equal(single, batched)),
        "action_error_mean": float(error.mean()),
        "action_error_max": float(error.max()),
        "action_error_p99": float(np.quantile(error, 0.99)),
        "action_error_vs_predict_mean": float(vs_predict.mean()),
        "action_error_vs_teacher_mean": float(vs_teacher.mean()),
        "within_target": float((error.max(axis=1) <= TARGET).mean()),
        "report_agreement": deployment.calibration.get("agreement"),
        "report_action_error": deployment.calibration.get("action_error"),
        "chip_return_mean": float(np.mean(chip_returns)),
        "chip_return_std": float(np.std(chip_returns)),
        "float_return_mean": float(np.mean(float_returns)),
        "float_return_std": float(np.std(float_returns)),
        "chip_returns": chip_returns,
        "float_returns": float_returns,
        "membrane_saturations": int(sum(deployment.calibration["saturations"].values())),
        "input_clipped": int(deployment.calibration["input_clipped"]),
        "energy_per_action_uj": report.get("energy_per_action_uj"),
        "synops_per_action": report.get("synops_per_action"),
        "cores": report.get("cores"),
        "warnings": [str(w.message) for w in caught],
    }
    print({k: v for k, v in result.items() if not k.endswith("_returns")}, flush=True)
    return result


def rows_of(
    result: dict[str, Any], kind: str, setting: dict[str, Any], episodes: int, n_held: int, teacher_returns: list[float]
) -> list[Row]:
    """The records of one measured network."""
    method = result["network"]
    base = dict(suite="nc64c", experiment="box", method=method, env=ENV_ID, seed=0)
    setting = {"kind": kind, "T": result["timesteps"], "training_seeds": 1, **setting}
    extra = {
        "one_at_a_time_equals_batched": result["one_at_a_time_equals_batched"],
        "single_shape": result["single_shape"],
        "membrane_saturations": result["membrane_saturations"],
        "input_clipped": result["input_clipped"],
        "cores": result["cores"],
        "target": TARGET,
    }
    sem = float(np.std(result["chip_returns"]) / np.sqrt(episodes))
    float_sem = float(np.std(result["float_returns"]) / np.sqrt(episodes))
    return [
        Row(
            **base,
            setting={**setting, "mode": "batched", "reference": "float SNN"},
            metric="mean_action_error",
            value=result["action_error_mean"],
            stderr=None,
            n=n_held,
            unit="fraction",
            extra={
                **extra,
                "max": result["action_error_max"],
                "p99": result["action_error_p99"],
                "vs_predict_mean": result["action_error_vs_predict_mean"],
                "vs_teacher_mean": result["action_error_vs_teacher_mean"],
            },
        ),
        Row(
            **base,
            setting={**setting, "mode": "batched", "reference": "float SNN"},
            metric="max_action_error",
            value=result["action_error_max"],
            stderr=None,
            n=n_held,
            unit="fraction",
            extra=extra,
        ),
        Row(
            **base,
            setting={**setting, "mode": "closed loop", "runs_on": "nc64c"},
            metric="mean_return",
            value=result["chip_return_mean"],
            stderr=sem,
            n=episodes,
            unit="return",
            extra={**extra, "returns": result["chip_returns"], "seeds": [1000, 1000 + episodes - 1]},
        ),
        Row(
            **base,
            setting={**setting, "mode": "closed loop", "runs_on": "float"},
            metric="mean_return",
            value=result["float_return_mean"],
            stderr=float_sem,
            n=episodes,
            unit="return",
            extra={"returns": result["float_returns"], "teacher_mean_return": float(np.mean(teacher_returns))},
        ),
        Row(
            **base,
            setting={**setting, "mode": "energy"},
            metric="energy_per_action",
            value=result["energy_per_action_uj"],
            stderr=None,
            n=None,
            unit="uJ",
            extra={"synops_per_action": result["synops_per_action"], "note": "chip model estimate (assumed energies)"},
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 32 only, 2 000 student steps, 5 episodes, 300 states")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--student-steps", type=int, default=10_000)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--no-records", action="store_true", help="print only")
    args = parser.parse_args()
    if args.quick:
        args.timesteps, args.student_steps, args.episodes = [32], 2_000, 5
    th.set_num_threads(1)
    n_held = 300 if args.quick else 1000
    start = time.perf_counter()
    from sb3_snn import convert

    teacher = load_teacher()
    calibration, held_out = states(teacher, 1000, 1), states(teacher, n_held, 2000)
    teacher_returns = returns(lambda obs: teacher.predict(obs, deterministic=True)[0], args.episodes)
    print(f"teacher: {np.mean(teacher_returns):.1f} +/- {np.std(teacher_returns):.1f}", flush=True)
    rows: list[Row] = [
        Row(
            suite="nc64c",
            experiment="box",
            method="TD3 teacher (float ANN)",
            env=ENV_ID,
            setting={"kind": "teacher", "mode": "closed loop", "runs_on": "float", "training_seeds": 1},
            seed=0,
            metric="mean_return",
            value=float(np.mean(teacher_returns)),
            stderr=float(np.std(teacher_returns) / np.sqrt(args.episodes)),
            n=args.episodes,
            unit="return",
            extra={"returns": teacher_returns, "path": str(TEACHER.relative_to(ROOT))},
        )
    ]
    for steps in args.timesteps:
        policy = convert(teacher, calibration_obs=calibration, timesteps=steps)
        result = measure(f"converted TD3 actor T={steps}", policy, calibration, held_out, teacher, args.episodes)
        rows += rows_of(
            result,
            "converted",
            {"conversion": "paper (percentile 99.9), reset every action"},
            args.episodes,
            n_held,
            teacher_returns,
        )
    t0 = time.perf_counter()
    agent = student(teacher, args.student_steps)
    distil_s = time.perf_counter() - t0
    result = measure(f"SDN student ({args.student_steps} steps)", agent.policy, calibration, held_out, teacher, args.episodes)
    rows += rows_of(
        result,
        "sdn",
        {
            "student_steps": args.student_steps,
            "distillation_s": round(distil_s, 1),
            "note": "brief distillation (zoo config section, fewer steps)",
        },
        args.episodes,
        n_held,
        teacher_returns,
    )
    if not args.no_records:
        print(append_rows("nc64c", rows))
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
