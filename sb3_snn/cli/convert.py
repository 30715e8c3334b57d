"""``sb3-snn convert``: convert a trained Q-learning agent to an IF spiking policy and sweep T / readouts.

    sb3-snn convert --algo dqn --env CartPole-v1 -f logs --exp-id 1 --percentile 99.9 \\
        --timesteps 100 500 --readout robust rate [--rounding floor round] --episodes 10 [-tb tb]
    sb3-snn convert --algo ppo --env PongNoFrameskip-v4 --model-path ppo_pong.zip --episodes 2
    sb3-snn convert --algo dqn --env CartPole-v1 --model-path dqn.zip --method low_latency --timesteps 8 16 32 64 \
        [--held-out 3000] [--low-latency '{"levels": 16}']

Prints the table (score, conversion rate, SynOps per action for every T and readout, and the source
model's own row), writes ``conversion.json`` and ``conversion.csv``, saves the converted policy
(``converted_policy.pt``, first T and readout) and its spiking description (``spiking_description/``)
into the output folder, and logs to TensorBoard with ``-tb``. ``--method low_latency`` converts a fine-tuned
copy (:mod:`sb3_snn.conversion.low_latency`); every method prints and saves (``conversion_rate_vs_T.csv``) the
conversion rate per T on held-out states the teacher plays, one line per T, and names the smallest T
reaching ``--goal``. Defaults come from
the shipped ``conversion.yml`` (``sb3_snn/configs``; ``-conf`` gives another)
(section env id, then ``atari``, then ``default``).

Model zips are read without running code from them (:func:`sb3_snn.common.models.load_model`);
``--trust-pickle`` uses SB3's own loader, for files you trust.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import yaml

from sb3_snn.configs import config_file
from sb3_snn.conversion.low_latency import METHODS
from sb3_snn.zoo.experiment import add_experiment_arguments, load_experiment

#: Keys a conversion.yml section may set.
SETTINGS = ("percentile", "timesteps", "readout", "rounding", "n_calibration", "episodes", "epsilon", "max_episode_steps",
            "method", "low_latency", "held_out")


def load_settings(path: str | os.PathLike, env_id: str) -> dict[str, Any]:
    """The conversion settings for ``env_id``: its section, else ``atari`` (NoFrameskip envs), else ``default``.

    :param path: a conversion YAML file
    :param env_id: environment id
    """
    with open(path) as file:
        config = yaml.safe_load(file) or {}
    section = config.get(env_id)
    if section is None and "NoFrameskip" in env_id:
        section = config.get("atari")
    if section is None:
        section = config.get("default", {})
    unknown = set(section) - set(SETTINGS)
    if unknown:
        raise SystemExit(f"{path}: unknown conversion settings {sorted(unknown)} for {env_id}")
    return dict(section)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sb3-snn convert", description=__doc__.splitlines()[0])
    add_experiment_arguments(parser)
    parser.add_argument("--model-path", default=None, help="convert this .zip instead of an experiment in -f")
    parser.add_argument("-conf", "--conf-file", default=None,
                        help="conversion YAML (default: the shipped sb3_snn/configs/conversion.yml)")
    parser.add_argument("--percentile", type=float, default=None, help="percentile p of the normalisation")
    parser.add_argument("--method", default=None, type=_method,
                        help=f"conversion method, one of {METHODS} (default: the config's, else paper)")
    parser.add_argument("--low-latency", default=None, type=_json_dict,
                        help="low_latency options as a JSON object, e.g. '{\"levels\": 16, \"epochs\": 40}'")
    parser.add_argument("--timesteps", type=int, nargs="+", default=None,
                        help="simulation steps T to evaluate (several: a T sweep, e.g. --timesteps 8 16 32 64)")
    parser.add_argument("--held-out", type=int, default=None,
                        help="held-out states for the conversion rate per T (0: skip)")
    parser.add_argument("--goal", type=float, default=0.99, help="conversion-rate goal named in the T sweep")
    parser.add_argument("--readout", nargs="+", choices=("robust", "rate", "robust_hidden"), default=None,
                        help="readouts to evaluate (robust_hidden: not the paper's, not exportable to a chip)")
    parser.add_argument("--rounding", nargs="+", choices=("floor", "round"), default=None,
                        help="hidden spike counts: floor (the paper's IF neurons) or round (+V_thr/2T bias per step)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per setting")
    parser.add_argument("--n-calibration", type=int, default=None, help="calibration frames (model plays, eps 0.05)")
    parser.add_argument("--epsilon", type=float, default=None, help="exploration while evaluating")
    parser.add_argument("--max-episode-steps", type=int, default=None, help="cap on agent steps per episode")
    parser.add_argument("--output-dir", default=None, help="default: <experiment>/conversion or logs/conversion/<env>")
    parser.add_argument("-tb", "--tensorboard-log", default=None, help="TensorBoard folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    return parser


def _method(value: str) -> str:
    """``--method``'s value, checked (argparse prints the error naming the allowed ones)."""
    if value not in METHODS:
        raise argparse.ArgumentTypeError(f"unknown conversion method {value!r}; expected one of {', '.join(METHODS)}")
    return value


def _json_dict(value: str) -> dict[str, Any]:
    """``--low-latency``'s value: a JSON object."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of low_latency options, got {value!r}")
    return parsed


def _load_from_path(args: argparse.Namespace) -> tuple[Any, Any]:
    """Load ``--model-path`` as ``--algo`` (:func:`sb3_snn.common.models.load_model`) and build its env
    (Atari: SB3's Atari wrappers and a 4-frame stack, as rl_zoo3 trains them)."""
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env
    from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

    from sb3_snn.common.models import load_model

    try:
        model = load_model(args.model_path, algo=args.algo, device=args.device, trusted=args.trust_pickle)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"sb3-snn convert: {exc}") from exc
    env: VecEnv
    if "NoFrameskip" in args.env:
        import ale_py

        gym.register_envs(ale_py)
        env = VecFrameStack(make_atari_env(args.env, n_envs=1, seed=args.seed), n_stack=4)
    else:
        env = make_vec_env(args.env, n_envs=1, seed=args.seed)
    return model, env


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    import torch as th

    from sb3_snn.conversion import convert
    from sb3_snn.conversion.evaluation import format_table, held_out_sweep, sweep

    if "-optimize" in argv or "--optimize-hyperparameters" in argv:  # a study of settings, not one conversion
        from sb3_snn.cli.convert_study import main as study_main

        return study_main(argv, _parser(), _load_from_path, load_settings)
    args = _parser().parse_args(argv)
    th.set_num_threads(args.threads)
    conf = args.conf_file or config_file("conversion.yml")
    if not Path(conf).is_file():
        raise SystemExit(f"sb3-snn convert: conversion config {conf} not found")
    settings = load_settings(conf, args.env)
    for key in SETTINGS:
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    settings.setdefault("percentile", 99.9)
    settings.setdefault("timesteps", [500])
    settings.setdefault("readout", ["robust"])
    settings.setdefault("rounding", ["floor"])
    settings.setdefault("n_calibration", 2000)
    settings.setdefault("episodes", 10)
    settings.setdefault("epsilon", 0.05)
    settings.setdefault("max_episode_steps", None)
    settings.setdefault("method", "paper")
    settings.setdefault("low_latency", None)
    settings.setdefault("held_out", 1000)
    try:
        settings["method"] = _method(settings["method"])
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"sb3-snn convert: {conf}: {exc}") from exc

    if args.model_path:
        model, env = _load_from_path(args)
        source_path = args.model_path
        output = Path(args.output_dir or Path(args.folder) / "conversion" / f"{args.env}_{args.algo}")
    else:
        experiment = load_experiment(args)
        model, env, source_path = experiment.model, experiment.env, experiment.model_path
        output = Path(args.output_dir or Path(experiment.log_path) / "conversion")
    try:
        low = settings["method"] == "low_latency"
        policy = convert(model, env=env, percentile=settings["percentile"], timesteps=settings["timesteps"][0],
                         readout=settings["readout"][0],
                         rounding=settings["rounding"][0] if not low or args.rounding else None,
                         n_calibration=settings["n_calibration"], seed=args.seed, device=args.device,
                         method=settings["method"], low_latency=settings["low_latency"] if low else None)
    except ValueError as exc:  # a model that cannot be converted, an env that does not match it
        raise SystemExit(f"sb3-snn convert: {source_path}: {exc}") from exc
    policy.metadata.update(env_id=args.env, algo=args.algo, source_path=str(source_path))
    curve = held_out_sweep(policy, model, env, settings["timesteps"], settings["held_out"], args.seed or 0) \
        if settings["held_out"] else []
    for entry in curve:
        print(f"T = {entry['timesteps']:>4}: conversion rate {100 * entry['conversion_rate']:6.2f} % on "
              f"{entry['n_states']} held-out states, {entry['synops_per_action']:.3g} SynOps/action")
    reaching = [e["timesteps"] for e in curve if e["conversion_rate"] >= args.goal]
    if curve:
        print(f"smallest T reaching {100 * args.goal:g} %: {min(reaching) if reaching else 'none'}")
    results = sweep(policy, model, env, timesteps=settings["timesteps"], readouts=settings["readout"],
                    roundings=[policy.rounding] if low and not args.rounding else settings["rounding"],
                    n_episodes=settings["episodes"], epsilon=settings["epsilon"],
                    seed=args.seed,
                    max_episode_steps=settings["max_episode_steps"])
    print(format_table(results))

    output.mkdir(parents=True, exist_ok=True)
    rows = [r.as_dict() for r in results]
    document = {
        "command": " ".join(["sb3-snn convert", *argv]),
        "machine": {"platform": platform.platform(), "torch_threads": th.get_num_threads(), "device": args.device},
        "env": args.env, "algo": args.algo, "source": str(source_path), "settings": settings,
        "scales": policy.scales, "results": rows, "held_out": curve,
        "smallest_T_reaching_goal": min(reaching) if reaching else None, "goal": args.goal,
    }
    (output / "conversion.json").write_text(json.dumps(document, indent=2))
    columns = ["timesteps", "readout", "rounding", "mean_score", "std_score", "conversion_rate", "n_steps",
               "synops_per_action", "input_macs_per_action", "ann_macs", "seconds_per_action", "truncated_episodes"]
    with open(output / "conversion.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    if curve:
        with open(output / "conversion_rate_vs_T.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=["timesteps", "conversion_rate", "n_states", "synops_per_action"])
            writer.writeheader()
            writer.writerows(curve)
    policy.save(output / "converted_policy.pt")
    policy.spiking_description().to_files(output / "spiking_description")
    if args.tensorboard_log:
        from stable_baselines3.common.logger import configure

        logger = configure(str(Path(args.tensorboard_log) / args.env / "conversion"), ["tensorboard"])
        for result in results:
            if result.readout == "ann":
                continue
            prefix = f"conversion/{result.readout}" + ("" if result.rounding == "floor" else f"_{result.rounding}")
            logger.record(f"{prefix}/score", result.mean_score)
            logger.record(f"{prefix}/conversion_rate", result.conversion_rate)
            logger.record(f"{prefix}/synops_per_action", result.synops_per_action)
            logger.dump(step=result.timesteps)
        logger.close()
    print(f"wrote {output}/conversion.json, conversion.csv, converted_policy.pt, spiking_description/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
