"""``sb3-snn export``: compile a spiking policy for a backend, print its report, save the artifact.

    sb3-snn export --backend nc64c --algo sdn --env CartPole-v1 -f logs --exp-id 1 --out out/nc64c
    sb3-snn export --backend nir --policy-file converted.pt --env CartPole-v1 --out out/nir --approximate-reset
    sb3-snn export --backend nc64c --policy-file description_folder/ --env CartPole-v1 --out out --episodes 5

The policy comes from an rl_zoo3 experiment (its ``spiking_description()``), from a converted policy
file (``ConvertedQPolicy.save``) or from a description folder (``SpikingDescription.to_files``).
Calibration observations are collected by playing the float policy in the environment (random
actions for a bare description). ``--episodes N`` then plays N episodes with the deployment's actions
and reports the score and the per-step agreement with the float spiking network (and with the
policy's own ``predict`` where there is a policy).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sb3_snn import backends
from sb3_snn.registry import UnknownPluginError
from sb3_snn.zoo.experiment import add_experiment_arguments


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments (the experiment flags are rl_zoo3 ``enjoy``'s)."""
    parser = argparse.ArgumentParser(prog="sb3-snn export", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", required=True, help=f"backend name (installed: {', '.join(backends.available())})")
    add_experiment_arguments(parser)
    for action in parser._actions:  # --algo/--env are optional with --policy-file
        if action.dest in ("algo", "env"):
            action.required = False
    parser.add_argument("--policy-file", default=None,
                        help="a converted policy file (ConvertedQPolicy.save) or a spiking description folder")
    parser.add_argument("--out", required=True, help="folder to write the artifact into")
    parser.add_argument("--episodes", type=int, default=0, help="play N episodes with the deployment and report score and agreement")
    parser.add_argument("--n-calibration", type=int, default=256, help="observations collected for calibration and estimates")
    parser.add_argument("--action-rate", type=float, default=50.0, help="actions per second for the power figure (nc64c)")
    parser.add_argument("--approximate-reset", action="store_true",
                        help="nir: write reset-by-subtraction neurons as reset-to-zero instead of refusing")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="backend options, e.g. weight_bits=4 neurons_per_core=256 (numbers parsed as JSON)")
    parser.add_argument("--json", default=None, help="also write the report (and episode figures) as JSON here")
    return parser


def _parse_settings(pairs: list[str]) -> dict[str, Any]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def load_policy(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """``(policy or None, description, vec_env or None)`` from the arguments."""
    if args.policy_file:
        path = Path(args.policy_file)
        if path.is_dir():
            policy = None
            description = backends.SpikingDescription.from_files(path)
        else:
            from sb3_snn.conversion import ConvertedQPolicy

            policy = ConvertedQPolicy.load(path, device="cpu")
            description = policy.spiking_description()
        env = None
        if args.env:
            from stable_baselines3.common.env_util import make_vec_env

            env = make_vec_env(args.env, n_envs=1, seed=args.seed)
        return policy, description, env
    if not (args.algo and args.env):
        raise SystemExit("sb3-snn export: give --algo and --env (a trained experiment) or --policy-file")
    from sb3_snn.zoo.experiment import load_experiment

    experiment = load_experiment(args)
    policy = experiment.model.policy
    if not callable(getattr(policy, "spiking_description", None)):
        raise SystemExit(f"sb3-snn export: {type(policy).__name__} is not a spiking policy (no spiking_description()); "
                         "convert it first (sb3-snn convert) and pass --policy-file")
    return policy, policy.spiking_description(), experiment.env


def make_preprocess(policy: Any, description: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Raw environment observations -> the description's input (the policy's own preprocessing)."""
    import torch as th

    if policy is not None and callable(getattr(policy, "preprocess", None)):
        def preprocess(obs: np.ndarray) -> np.ndarray:
            with th.no_grad():
                return policy.preprocess(th.as_tensor(obs)).double().cpu().numpy()
        return preprocess
    scale = float(description.metadata.get("input_scale", 1.0))
    return lambda obs: np.asarray(obs, dtype=np.float64) * scale


def collect_observations(env: Any, n: int, act: Callable[[np.ndarray], np.ndarray] | None, seed: int) -> np.ndarray:
    """``n`` raw observations from playing ``act`` (random actions if ``None``) in a ``VecEnv``."""
    rng = np.random.default_rng(seed)
    obs, frames = env.reset(), []
    while len(frames) < n:
        frames.append(obs[0])
        actions = act(obs) if act is not None else np.array([env.action_space.sample() for _ in range(env.num_envs)])
        if act is not None and rng.random() < 0.1:  # a little exploration widens the calibration range
            actions = np.array([env.action_space.sample() for _ in range(env.num_envs)])
        obs, _, _, _ = env.step(actions)
    return np.stack(frames)


def play(env: Any, deployment: Any, preprocess: Callable, policy: Any, episodes: int) -> dict[str, Any]:
    """Play ``episodes`` with the deployment's actions; per-step agreement with the float SNN and the policy."""
    from sb3_snn.spiking.simulate import simulate

    scores, equal_snn, equal_policy, steps = [], 0, 0, 0
    # a temporal (CVTC) network has no discrete-time float reference: compare with the policy only
    discrete = not any(layer.neuron is not None and layer.neuron.model == "temporal"
                       for layer in deployment.description.layers)
    obs, score = env.reset(), 0.0
    while len(scores) < episodes:
        x = preprocess(obs)
        action = deployment.run(x)
        if discrete:
            equal_snn += int((action == simulate(deployment.description, x).actions).all())
        if policy is not None:
            equal_policy += int((action == np.asarray(policy.predict(obs, deterministic=True)[0]).ravel()).all())
        obs, reward, done, infos = env.step(action)
        steps += 1
        score += float(reward[0])
        if done[0]:
            episode = infos[0].get("episode")
            scores.append(float(episode["r"]) if episode else score)
            score = 0.0
    return {
        "episodes": episodes, "steps": steps, "mean_score": float(np.mean(scores)), "std_score": float(np.std(scores)),
        "scores": scores, "agreement_with_float_snn": equal_snn / steps if discrete else None,
        "agreement_with_policy": equal_policy / steps if policy is not None else None,
    }


def main(argv: list[str]) -> int:
    """Compile, report, save; optionally play episodes."""
    args = build_parser().parse_args(argv)
    try:
        backend = backends.load(args.backend)
    except UnknownPluginError as exc:
        print(f"sb3-snn export: {exc}", file=sys.stderr)
        return 2
    policy, description, env = load_policy(args)
    preprocess = make_preprocess(policy, description)
    if env is not None:
        act = (lambda o: np.asarray(policy.predict(o, deterministic=True)[0])) if policy is not None else None
        raw = collect_observations(env, args.n_calibration, act, args.seed)
    else:
        print("sb3-snn export: no --env: calibrating on Gaussian observations (give --env for a faithful input range)")
        raw = np.random.default_rng(args.seed).standard_normal((args.n_calibration, *description.input_shape))
    example_obs = preprocess(raw)
    options = _parse_settings(args.set)
    if args.backend == "nir":
        options.setdefault("approximate_reset", args.approximate_reset)
    elif args.backend == "nc64c":
        options.setdefault("action_rate_hz", args.action_rate)
    start = time.perf_counter()
    try:
        deployment = backend.compile(description, example_obs, **options)
    except backends.BackendError as exc:
        print(f"sb3-snn export: {exc}", file=sys.stderr)
        return 1
    report = deployment.report()
    print(report)
    out = deployment.save(args.out)
    print(f"\nartifact: {out} (compiled in {time.perf_counter() - start:.1f} s)")
    document: dict[str, Any] = {"report": report.to_dict()}
    if args.episodes:
        if env is None:
            raise SystemExit("sb3-snn export: --episodes needs an environment (--env)")
        figures = play(env, deployment, preprocess, policy, args.episodes)
        document["episodes"] = figures
        agreements = [f"with the {name} {figures[key]:.4f}" for name, key in
                      (("float SNN", "agreement_with_float_snn"), ("policy", "agreement_with_policy"))
                      if figures[key] is not None]
        print(f"\n{args.episodes} episodes with the {args.backend} deployment: score {figures['mean_score']:.1f} "
              f"± {figures['std_score']:.1f}; agreement " + ", ".join(agreements) + f" over {figures['steps']} steps")
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2))
    return 0
