"""``sb3-snn enjoy``: watch a trained agent of any registered algorithm, or record a video of it.

    sb3-snn enjoy --algo ddqn --env CartPole-v1 -f logs                 # a window (render_mode="human")
    sb3-snn enjoy --algo sdn --env CartPole-v1 -f logs --record -n 500  # an mp4 in <experiment>/videos/

rl_zoo3's ``enjoy`` and ``record_video`` fix their ``--algo`` choices before ``--gym-packages`` loads, so they
refuse ``ddqn`` and ``sdn``; this command takes every algorithm in the zoo's table, registered ones
included. The agent is loaded by :func:`sb3_snn.zoo.experiment.load_experiment` (safe unless
``--trust-pickle``); the environment is built the same way with a ``render_mode``, and ``--record``
wraps it in SB3's ``VecVideoRecorder`` like rl_zoo3's ``record_video`` (moviepy writes the mp4).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sb3_snn.cli.main import positive_int
from sb3_snn.zoo.experiment import add_experiment_arguments, load_experiment, make_experiment_env


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``sb3-snn enjoy``."""
    parser = argparse.ArgumentParser(prog="sb3-snn enjoy", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_experiment_arguments(parser)
    parser.add_argument("-n", "--n-timesteps", type=positive_int, default=1000, help="environment steps to play (or record)")
    parser.add_argument("--record", action="store_true", help="record a video (render_mode='rgb_array') instead of a window")
    parser.add_argument("-o", "--output-folder", type=Path, default=None, help="video folder (default: <experiment>/videos)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of acting greedily")
    return parser


def main(argv: list[str]) -> int:
    """Play ``-n`` steps of the experiment's agent, shown in a window or recorded; print the episodes' rewards."""
    from stable_baselines3.common.vec_env import VecVideoRecorder

    from gymnasium.error import DependencyNotInstalled

    args = build_parser().parse_args(argv)
    experiment = load_experiment(args)
    experiment.env.close()
    video_folder = args.output_folder or Path(experiment.log_path) / "videos"
    try:
        env = make_experiment_env(args, experiment.log_path, render_mode="rgb_array" if args.record else "human")
        if args.record:
            env = VecVideoRecorder(env, str(video_folder), record_video_trigger=lambda step: step == 0,
                                   video_length=args.n_timesteps, name_prefix=f"{args.algo}-{args.env}")
        obs = env.reset()
    except DependencyNotInstalled as exc:  # pygame (classic control rendering) or moviepy (the video)
        raise SystemExit(f"sb3-snn enjoy: {exc}; `pip install \"sb3-snn[video]\"` installs both") from exc
    state, episode_start = None, np.ones((env.num_envs,), dtype=bool)
    returns, current = [], 0.0
    try:
        for _ in range(args.n_timesteps):
            action, state = experiment.model.predict(obs, state=state, episode_start=episode_start,  # type: ignore[arg-type]
                                                     deterministic=not args.stochastic)
            obs, rewards, dones, _ = env.step(action)
            episode_start = dones
            current += float(rewards[0])
            if dones[0]:
                returns.append(current)
                current = 0.0
            if not args.record:
                env.render()
    except KeyboardInterrupt:
        pass
    finally:
        env.close()  # the recorder writes the video when closed
    finished = f"{len(returns)} episode(s), mean reward {np.mean(returns):.2f}" if returns else "no episode finished"
    print(f"{args.algo} on {args.env} ({experiment.model_path}): {args.n_timesteps} steps, {finished}")
    if args.record:
        videos = sorted(video_folder.glob(f"{args.algo}-{args.env}*.mp4"))
        print(f"video: {videos[-1] if videos else '(none written)'}")
    return 0
