"""Benchmark: the PPO Pong fixture's actor converted to an IF policy, on PongNoFrameskip-v4.

Env as the fixture README: ``make_atari_env(n_envs=1, seed)`` (AtariWrapper: up to 30 no-op starts,
frame skip 4, 84x84 grey) + ``VecFrameStack(4)``. Each setting plays the same episode seeds with
epsilon = 0.05; conversion rate compares the SNN's greedy action with the teacher's on every frame
the SNN sees. The teacher's own row uses the same protocol. Pong episodes are long: the defaults
(2 episodes, capped at 4 500 agent steps = 18 000 frames as in the paper) take ~30 min on 1 core.

    .venv/bin/python benchmarks/bench_conversion_pong.py --episodes 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch as th

FIXTURE = str(Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ppo_pong" / "ppo_pong.zip")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", default=FIXTURE)
    parser.add_argument("--percentile", type=float, default=99.9)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--rate-timesteps", type=int, nargs="*", default=[100], help="also run the rate readout here")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--max-episode-steps", type=int, default=4500)
    parser.add_argument("--n-calibration", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="benchmarks/out/results/conversion_pong.json")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from sb3_snn.conversion import convert
    from sb3_snn.conversion.evaluation import evaluate_conversion, format_table, sweep
    from bench_conversion_common import sweep_rows, write_record

    gym.register_envs(ale_py)
    model = PPO.load(args.model_path, device="cpu",
                     custom_objects={"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0})
    env = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=1, seed=args.seed), n_stack=4)
    start = time.perf_counter()
    policy = convert(model, env=env, percentile=args.percentile, n_calibration=args.n_calibration, seed=args.seed,
                     device=args.device)
    convert_seconds = time.perf_counter() - start
    kwargs = {"n_episodes": args.episodes, "seed": args.seed, "max_episode_steps": args.max_episode_steps}
    results = sweep(policy, model, env, timesteps=args.timesteps, readouts=["robust"], **kwargs)
    for steps in args.rate_timesteps:
        results.append(evaluate_conversion(policy.with_settings(steps, "rate"), model, env, **kwargs))
    print(format_table(results))
    details = [r.as_dict() for r in results]
    robust = [r for r in details if r["readout"] == "robust"]
    top = max(robust, key=lambda r: r["timesteps"]) if robust else None
    headline = (f"T={top['timesteps']} robust: score {top['mean_score']:.1f} vs teacher {details[0]['mean_score']:.1f}, "
                f"conversion rate {100 * top['conversion_rate']:.2f} % ({args.episodes} episodes)"
                if top else "see rows")
    record = {
        "benchmark": Path(args.output).stem,
        "title": "Conversion: PPO Pong fixture actor -> IF SNN on PongNoFrameskip-v4",
        "command": " ".join([".venv/bin/python", "benchmarks/bench_conversion_pong.py", *sys.argv[1:]]),
        "target": "conversion rate and score vs the teacher at T = 100 and 500 (paper's Pong row: DQN 19.9, SNN 19.8)",
        "headline": headline,
        "notes": [
            f"teacher {args.model_path}: PPO CnnPolicy actor (NatureCNN + action_net), greedy = argmax logits",
            "env: make_atari_env('PongNoFrameskip-v4', n_envs=1, seed) + VecFrameStack(4) (AtariWrapper: up to "
            "30 no-op starts, frame skip 4)",
            f"epsilon 0.05, {args.episodes} episodes per row, episode seeds {args.seed}..{args.seed + args.episodes - 1}, "
            f"capped at {args.max_episode_steps} agent steps (a capped episode scores its points so far)",
            f"percentile {args.percentile}, {args.n_calibration} calibration frames (teacher plays, epsilon 0.05); "
            f"lambdas {policy.scales}; convert() took {convert_seconds:.1f} s",
        ],
        "paper_rows": [{"game": "Pong", "DQN": 19.9, "SNN (T=500, robust, p=99.99)": 19.8,
                        "conversion rate robust": 0.858, "conversion rate rate": 0.720,
                        "source": "seed Table 2, line 298 (percentile 99.99); at 99.9: SNN 19.4, CR 63.9 % / 59.9 %"}],
        "rows": sweep_rows(details, "teacher"),
        "details": details,
    }
    write_record(args.output, record, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
