"""Low-latency conversion (``convert(method="low_latency")``) against the paper's method, on a screen of
plain-SB3 CartPole DQNs and on the PPO Pong fixture.

    .venv/bin/python benchmarks/bench_conversion_low_latency.py [--quick]          # CartPole screen
    .venv/bin/python benchmarks/bench_conversion_low_latency.py --pong [--episodes 30]
    .venv/bin/python benchmarks/bench_conversion_low_latency.py --plot               # the figure only

CartPole teachers: DQNs trained with plain Stable-Baselines3 and rl_zoo3's CartPole-v1 settings
(``sb3_snn/configs/zoo/dqn.yml``: 5e4 steps, lr 2.3e-3, batch 64, ...), ``net_arch`` [64, 64] and [256, 256];
seeds 0-2 are read from ``benchmarks/out/nc64c_teachers/`` (``bench_nc64c_agreement.py`` trains them),
seeds 3.. are trained here into ``benchmarks/out/conversion_screen/`` when missing. For every teacher:

* conversion rate = agreement of the SNN's greedy action with the **original** teacher's on 3 000
  held-out states (the teacher playing epsilon = 0.05, episode seeds 100..), for ``low_latency`` at
  T in {8, 16, 32, 64} and the paper's method at T in {32, 64, 128, 256, 500};
* closed-loop score over paired episodes (episode ``i`` seeded ``1000 + i`` for the teacher and both SNNs,
  epsilon = 0.05, batched across a VecEnv) at each method's smallest T reaching 99 % (else its largest);
* SynOps per action on the held-out states, and the NC64C chip model's energy per action (its cost
  estimate, default ``ChipSpec``) beside the ANN's fp32 energy.

Pong: the PPO fixture's actor (NatureCNN + ``action_net``, greedy = argmax of the logits) converted with
``low_latency``; conversion rate on held-out frames at T in {8, 16, 32, 64}; score over paired episodes
(teacher and SNN on the same seeds) at the smallest T <= 64 reaching 99 % on the held-out frames.

Rows go to ``benchmarks/records/conversion_low_latency.jsonl`` (suite ``conversion_low_latency``);
the figure to ``docs/img/conversion_rate_vs_T.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import ROOT, machine, zoo_dqn_settings

SUITE = "conversion_low_latency"
RECORDS = ROOT / "benchmarks" / "records" / f"{SUITE}.jsonl"
FIGURE = ROOT / "docs" / "img" / "conversion_rate_vs_T.png"
OLD_TEACHERS = ROOT / "benchmarks" / "out" / "nc64c_teachers"
NEW_TEACHERS = ROOT / "benchmarks" / "out" / "conversion_screen"
FIXTURE = ROOT.parent / "shared" / "fixtures" / "ppo_pong" / "ppo_pong.zip"  # the shared folder beside the checkout
#: rl_zoo3 hyperparams/dqn.yml, CartPole-v1 (net_arch set per teacher)
ZOO_CARTPOLE, ZOO_STEPS = zoo_dqn_settings("CartPole-v1")
ZOO_CARTPOLE = dict(
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
)
LOW_T = (8, 16, 32, 64)
PAPER_T = (32, 64, 128, 256, 500)
GOAL = 0.99


def write_rows(rows: list[dict[str, Any]]) -> None:
    """Append rows to the suite's records (validated by ``benchmarks.records.Row``)."""
    from benchmarks.records import Row, append_rows

    append_rows(SUITE, [Row(**row) for row in rows])


def row(
    experiment: str,
    method: str,
    env: str,
    setting: dict[str, Any],
    seed: int | None,
    metric: str,
    value: float,
    unit: str,
    stderr: float | None = None,
    n: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One record row (the fields of ``benchmarks.records.Row``)."""
    return dict(
        suite=SUITE,
        experiment=experiment,
        method=method,
        env=env,
        setting=setting,
        seed=seed,
        metric=metric,
        value=float(value),
        stderr=None if stderr is None else float(stderr),
        n=n,
        unit=unit,
        extra={"machine": machine(), **extra},
    )


def teacher_path(arch: tuple[int, ...], seed: int) -> Path:
    """Where the teacher lives (seeds 0-2: the NC64C benchmark's cache; others: this screen's)."""
    name = f"dqn_{'x'.join(map(str, arch))}_seed{seed}.zip"
    return (OLD_TEACHERS if (OLD_TEACHERS / name).is_file() else NEW_TEACHERS) / name


def teacher(arch: tuple[int, ...], seed: int) -> Any:
    """The cached (or freshly trained, plain SB3) CartPole DQN for ``arch`` and ``seed``."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    path = teacher_path(arch, seed)
    if path.is_file():
        return DQN.load(path, device="cpu", buffer_size=1)
    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    model = DQN("MlpPolicy", env, policy_kwargs=dict(net_arch=list(arch)), seed=seed, device="cpu", **ZOO_CARTPOLE)
    model.learn(50_000)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path, exclude=["replay_buffer"])
    return model


def paired(scores: list[float], base: list[float]) -> tuple[float, float, float, float]:
    """Mean, its standard error, and the mean paired difference to ``base`` with its standard error."""
    a, b = np.asarray(scores), np.asarray(base)
    se = float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0
    d = a - b
    se_d = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return float(a.mean()), se, float(d.mean()), se_d


def held_out_agreement(policy: Any, obs: np.ndarray, greedy: np.ndarray) -> tuple[float, float]:
    """Agreement of ``policy`` with ``greedy`` on ``obs`` and its SynOps per action."""
    tensor = th.as_tensor(obs)
    simulation = policy.simulate(tensor)
    from sb3_snn.spiking.synops import count_operations

    synops = count_operations(policy.spiking_description(), policy.spike_counts_by_name(simulation)).synops
    return float((policy.actions_of(simulation.outputs).cpu().numpy() == greedy).mean()), float(synops)


def chip_energy(policy: Any, obs: np.ndarray) -> dict[str, float]:
    """NC64C chip model's energy per action and the ANN's fp32 energy (its cost estimate: calibrated on the first
    300 of ``obs``, agreement with the float SNN on the next 200, activity on both)."""
    from sb3_snn import backends

    try:
        deployment = backends.load("nc64c").compile(policy.spiking_description(), obs[:300], eval_obs=obs[300:500])
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}  # type: ignore[dict-item]
    energy = deployment.energy
    return {
        "chip_energy_uj": energy.energy_uj,
        "chip_synops": energy.synops,
        "ann_fp32_energy_uj": energy.ann_energy_uj,
        "chip_agreement_with_float_snn": deployment.calibration.get("agreement"),
    }


def screen(args: argparse.Namespace) -> None:
    """The CartPole screen (module docstring)."""
    from stable_baselines3.common.env_util import make_vec_env

    from bench_conversion_common import held_out_frames
    from sb3_snn.conversion import convert, extract_network
    from sb3_snn.conversion.evaluation import run_episodes_batched

    seeds = list(range(args.first_seed, args.seeds))
    archs = [(64, 64), (256, 256)]
    for arch in archs:
        for seed in seeds:
            teacher(arch, seed)
    env_id, episodes = "CartPole-v1", args.episodes
    for seed in seeds:
        for arch in archs:
            start = time.perf_counter()
            name = f"dqn_{'x'.join(map(str, arch))}_seed{seed}"
            model = teacher(arch, seed)
            source = extract_network(model)
            calib_env = make_vec_env(env_id, n_envs=1, seed=0)
            test = held_out_frames(source, calib_env, args.held_out, first_seed=100)
            greedy = source.act(test)
            rows: list[dict[str, Any]] = []
            common = dict(teacher=name, net_arch=list(arch), teacher_path=str(teacher_path(arch, seed).relative_to(ROOT)))
            low = convert(
                model, env=calib_env, method="low_latency", timesteps=max(LOW_T), seed=0, low_latency=args.low_latency_options
            )
            paper = convert(model, env=calib_env, timesteps=500, n_calibration=2000, seed=0)
            curves: dict[str, dict[int, tuple[float, float]]] = {"low_latency": {}, "paper": {}}
            for method, policy, ts in (("low_latency", low, LOW_T), ("paper", paper, PAPER_T)):
                for steps in ts:
                    rate, synops = held_out_agreement(policy.with_settings(timesteps=steps), test, greedy)
                    curves[method][steps] = (rate, synops)
                    setting = {"T": steps, "rounding": policy.rounding, "readout": policy.readout}
                    rows.append(
                        row(
                            "cartpole_screen",
                            method,
                            env_id,
                            setting,
                            seed,
                            "conversion_rate_held_out",
                            rate,
                            "fraction",
                            n=len(test),
                            **common,
                        )
                    )
                    rows.append(
                        row(
                            "cartpole_screen",
                            method,
                            env_id,
                            setting,
                            seed,
                            "synops_per_action",
                            synops,
                            "synops",
                            n=len(test),
                            **common,
                        )
                    )
            rows.append(
                row(
                    "cartpole_screen",
                    "low_latency",
                    env_id,
                    {},
                    seed,
                    "fine_tune_validation_agreement",
                    low.metadata["fine_tuning"]["validation_agreement"],
                    "fraction",
                    **common,
                    fine_tuning=low.metadata["fine_tuning"],
                    options=low.metadata["low_latency"],
                )
            )
            chosen = {m: next((t for t in sorted(c) if c[t][0] >= GOAL), max(c)) for m, c in curves.items()}
            venv = make_vec_env(env_id, n_envs=episodes, seed=0)
            base = run_episodes_batched(model, venv, seed=1000, epsilon=0.05)
            rows.append(
                row(
                    "cartpole_screen",
                    "teacher",
                    env_id,
                    {"epsilon": 0.05},
                    seed,
                    "score",
                    float(np.mean(base.scores)),
                    "return",
                    stderr=float(np.std(base.scores, ddof=1) / np.sqrt(episodes)),
                    n=episodes,
                    scores=base.scores,
                    **common,
                )
            )
            summary = {}
            for method, policy in (("low_latency", low), ("paper", paper)):
                steps = chosen[method]
                run = run_episodes_batched(
                    policy.with_settings(timesteps=steps), venv, seed=1000, epsilon=0.05, reference=model
                )
                mean, se, diff, se_diff = paired(run.scores, base.scores)
                setting = {"T": steps, "epsilon": 0.05, "chosen": "smallest T reaching 99 % held-out, else largest"}
                energy = chip_energy(policy.with_settings(timesteps=steps), test)
                rows += [
                    row(
                        "cartpole_screen",
                        method,
                        env_id,
                        setting,
                        seed,
                        "score",
                        mean,
                        "return",
                        stderr=se,
                        n=episodes,
                        scores=run.scores,
                        paired_difference=diff,
                        paired_difference_stderr=se_diff,
                        teacher_score=float(np.mean(base.scores)),
                        **common,
                    ),
                    row(
                        "cartpole_screen",
                        method,
                        env_id,
                        setting,
                        seed,
                        "conversion_rate_closed_loop",
                        run.conversion_rate,
                        "fraction",
                        n=int(sum(run.lengths)),
                        **common,
                    ),
                    row(
                        "cartpole_screen",
                        method,
                        env_id,
                        setting,
                        seed,
                        "synops_per_action_closed_loop",
                        run.synops / max(sum(run.lengths), 1),
                        "synops",
                        n=int(sum(run.lengths)),
                        **common,
                    ),
                ]
                if "chip_energy_uj" in energy:
                    rows += [
                        row(
                            "cartpole_screen",
                            method,
                            env_id,
                            setting,
                            seed,
                            "chip_energy_per_action",
                            energy["chip_energy_uj"],
                            "uJ",
                            **common,
                            **energy,
                        ),
                        row(
                            "cartpole_screen",
                            "ann_fp32",
                            env_id,
                            {},
                            seed,
                            "energy_per_action",
                            energy["ann_fp32_energy_uj"],
                            "uJ",
                            **common,
                        ),
                    ]
                summary[method] = (steps, mean, curves[method][steps][0], energy.get("chip_energy_uj"))
            write_rows(rows)
            print(
                name,
                f"teacher {np.mean(base.scores):.1f}",
                {m: {t: round(100 * v[0], 2) for t, v in c.items()} for m, c in curves.items()},
                summary,
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )


def pong(args: argparse.Namespace) -> None:
    """The Pong fixture (module docstring)."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

    from sb3_snn.conversion import collect_calibration_frames, convert, extract_network
    from sb3_snn.conversion.evaluation import run_episodes_batched

    gym.register_envs(ale_py)
    env_id = "PongNoFrameskip-v4"
    model = PPO.load(
        args.model_path,
        device="cpu",
        custom_objects={"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0},
    )
    source = extract_network(model)
    env = VecTransposeImage(VecFrameStack(make_atari_env(env_id, n_envs=1, seed=0), n_stack=4))
    options = {
        "levels": 16,
        "epochs": args.pong_epochs,
        "n_states": args.pong_states,
        "n_validation": 500,
        "lr": 1e-4,
        "batch_size": 64,
    }
    cache = NEW_TEACHERS / "pong_low_latency_policy.pt"
    start = time.perf_counter()
    if cache.is_file():
        from sb3_snn.conversion import ConvertedQPolicy

        policy = ConvertedQPolicy.load(cache)
    else:
        policy = convert(model, env=env, method="low_latency", timesteps=32, seed=0, low_latency=options)
        cache.parent.mkdir(parents=True, exist_ok=True)
        policy.save(cache)
    convert_seconds = time.perf_counter() - start
    print("fine-tuned", policy.metadata["fine_tuning"], f"{convert_seconds:.0f}s", flush=True)
    common = dict(teacher=args.model_path, fine_tuning=policy.metadata["fine_tuning"], options=options)
    steps = args.pong_T
    if steps is None:
        test_env = VecTransposeImage(VecFrameStack(make_atari_env(env_id, n_envs=1, seed=0), n_stack=4))
        test = collect_calibration_frames(source, test_env, args.pong_held_out, 0.05, 777)
        greedy = source.act(test)
        rows, curve = [], {}
        for t in LOW_T:
            rate, synops = held_out_agreement(policy.with_settings(timesteps=t), test, greedy)
            curve[t] = rate
            print(f"T={t} held-out {100 * rate:.2f} % SynOps {synops:.3g}", flush=True)
            rows += [
                row(
                    "pong_fixture",
                    "low_latency",
                    env_id,
                    {"T": t},
                    0,
                    "conversion_rate_held_out",
                    rate,
                    "fraction",
                    n=len(test),
                    **common,
                ),
                row(
                    "pong_fixture",
                    "low_latency",
                    env_id,
                    {"T": t},
                    0,
                    "synops_per_action",
                    synops,
                    "synops",
                    n=len(test),
                    **common,
                ),
            ]
        write_rows(rows)
        steps = next((t for t in LOW_T if curve[t] >= GOAL), max(LOW_T))
    snn = policy.with_settings(timesteps=steps)
    # chunks of paired episodes (teacher, then the SNN on the same seeds), each written when done
    for first in range(args.seed, args.seed + args.episodes, args.chunk):
        n = min(args.chunk, args.seed + args.episodes - first)
        runs = {}
        for label, actor in (("teacher", model), ("low_latency", snn)):
            venv = VecTransposeImage(VecFrameStack(make_atari_env(env_id, n_envs=n, seed=0), n_stack=4))
            t0 = time.perf_counter()
            runs[label] = run_episodes_batched(
                actor, venv, seed=first, epsilon=0.05, reference=model if label != "teacher" else None, max_episode_steps=4500
            )
            print(label, first, runs[label].scores, f"{time.perf_counter() - t0:.0f}s", flush=True)
        base, run = runs["teacher"], runs["low_latency"]
        setting = {"T": steps, "epsilon": 0.05, "episode_seeds": [first, first + n - 1]}
        write_rows(
            [
                row(
                    "pong_fixture",
                    "teacher",
                    env_id,
                    {"epsilon": 0.05, "episode_seeds": [first, first + n - 1]},
                    first,
                    "score",
                    float(np.mean(base.scores)),
                    "return",
                    n=n,
                    scores=base.scores,
                    **common,
                ),
                row(
                    "pong_fixture",
                    "low_latency",
                    env_id,
                    setting,
                    first,
                    "score",
                    float(np.mean(run.scores)),
                    "return",
                    n=n,
                    scores=run.scores,
                    teacher_scores=base.scores,
                    truncated=run.truncated,
                    **common,
                ),
                row(
                    "pong_fixture",
                    "low_latency",
                    env_id,
                    setting,
                    first,
                    "conversion_rate_closed_loop",
                    run.conversion_rate,
                    "fraction",
                    n=int(sum(run.lengths)),
                    **common,
                ),
                row(
                    "pong_fixture",
                    "low_latency",
                    env_id,
                    setting,
                    first,
                    "synops_per_action_closed_loop",
                    run.synops / max(sum(run.lengths), 1),
                    "synops",
                    n=int(sum(run.lengths)),
                    **common,
                ),
            ]
        )


def pong_summary() -> None:
    """Paired Pong scores over every chunk recorded so far (mean +- standard error, SNN - teacher)."""
    teacher_scores, snn_scores = [], []
    for line in RECORDS.read_text().splitlines() if RECORDS.is_file() else []:
        record = json.loads(line)
        if record["experiment"] == "pong_fixture" and record["method"] == "low_latency" and record["metric"] == "score":
            snn_scores += record["extra"]["scores"]
            teacher_scores += record["extra"]["teacher_scores"]
    if snn_scores:
        mean, se, diff, se_diff = paired(snn_scores, teacher_scores)
        t_mean, t_se, _, _ = paired(teacher_scores, teacher_scores)
        print(
            f"Pong, {len(snn_scores)} paired episodes: SNN {mean:.2f} ± {se:.2f}, teacher {t_mean:.2f} ± {t_se:.2f}, "
            f"SNN - teacher {diff:.2f} ± {se_diff:.2f}"
        )
        # the chunks pooled: one row per agent over every paired episode, and their paired difference
        setting = {"epsilon": 0.05, "n_episode_seeds": len(snn_scores), "training_seeds": 1}
        write_rows(
            [
                row("pong_paired", "teacher", "PongNoFrameskip-v4", setting, None, "score", t_mean, "return",
                    stderr=t_se, n=len(teacher_scores)),
                row("pong_paired", "low_latency", "PongNoFrameskip-v4", setting, None, "score", mean, "return",
                    stderr=se, n=len(snn_scores)),
                row("pong_paired", "low_latency", "PongNoFrameskip-v4", setting, None, "score_minus_teacher", diff,
                    "return", stderr=se_diff, n=len(snn_scores)),
            ]
        )


def plot() -> None:
    """Conversion rate vs T, both methods, median and spread over the screen's teachers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates: dict[str, dict[int, dict[str, float]]] = {}
    for line in RECORDS.read_text().splitlines() if RECORDS.is_file() else []:
        record = json.loads(line)
        if record["experiment"] == "cartpole_screen" and record["metric"] == "conversion_rate_held_out":
            teacher_name = record["extra"]["teacher"]
            rates.setdefault(record["method"], {}).setdefault(record["setting"]["T"], {})[teacher_name] = record["value"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, color in (("low_latency", "tab:blue"), ("paper", "tab:orange")):
        curve = rates.get(method, {})
        ts = sorted(curve)
        if not ts:
            continue
        values = [100 * np.asarray(list(curve[t].values())) for t in ts]
        ax.plot(ts, [np.median(v) for v in values], "o-", color=color, label=f"{method} (median)")
        ax.fill_between(
            ts,
            [v.min() for v in values],
            [v.max() for v in values],
            color=color,
            alpha=0.2,
            label=f"{method} (min-max, {len(values[0])} teachers)",
        )
    ax.axhline(100 * GOAL, color="grey", ls="--", lw=1)
    ax.set(
        xscale="log",
        xlabel="simulation steps per action T",
        ylabel="conversion rate, held-out states (%)",
        title="CartPole-v1 DQN screen: conversion rate vs T",
    )
    ax.set_xticks([8, 16, 32, 64, 128, 256, 500], ["8", "16", "32", "64", "128", "256", "500"])
    ax.legend(fontsize=8)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=100)
    print(f"wrote {FIGURE}")


def main() -> None:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seeds 0 only, 10 episodes, 1 000 held-out states")
    parser.add_argument("--seeds", type=int, default=6, help="teacher seeds first-seed..n-1 per width")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--held-out", type=int, default=3000)
    parser.add_argument("--low-latency-options", type=json.loads, default=None, help="JSON dict of LowLatencyOptions")
    parser.add_argument("--pong", action="store_true", help="the Pong fixture instead of the CartPole screen")
    parser.add_argument("--model-path", default=FIXTURE)
    parser.add_argument("--pong-epochs", type=int, default=8)
    parser.add_argument("--pong-states", type=int, default=3000)
    parser.add_argument("--pong-held-out", type=int, default=1000)
    parser.add_argument("--pong-T", type=int, default=None, help="closed-loop T (default: smallest reaching 99 %%)")
    parser.add_argument("--seed", type=int, default=0, help="Pong: episode seeds seed..seed+episodes-1")
    parser.add_argument("--chunk", type=int, default=10, help="Pong: paired episodes played side by side per chunk")
    parser.add_argument("--plot", action="store_true", help="only redraw the figure from the records")
    args = parser.parse_args()
    th.set_num_threads(1)
    if args.quick:
        args.seeds, args.episodes, args.held_out = 1, 10, 1000
    if args.plot:
        plot()
    elif args.pong:
        pong(args)
        pong_summary()
    else:
        screen(args)
        plot()


if __name__ == "__main__":
    main()
