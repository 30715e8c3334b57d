"""``sb3-snn export``: compile a spiking policy for a backend, print its report, save the artifact.

    sb3-snn export --backend nc64c --algo sdn --env CartPole-v1 -f logs --exp-id 1 --out out/nc64c
    sb3-snn export --backend nir --policy-file converted.pt --env CartPole-v1 --out out/nir --set approximate_reset=true
    sb3-snn export --backend nc64c --policy-file description_folder/ --env CartPole-v1 --out out --episodes 5

The policy comes from an rl_zoo3 experiment (its ``spiking_description()``), from a spiking policy file
(``policy.save``: the converted policy of ``sb3-snn convert``, say) or from a description folder
(``SpikingDescription.to_files``).
Calibration observations are collected by playing the float policy in the environment (epsilon 0.1;
random actions for a bare description). ``--set KEY=VALUE`` passes the backend's own options to its
``compile`` (a key the backend does not have is refused with the list of those it has); ``--action-rate``
is the cost context every backend takes. ``--episodes N`` then plays N episodes with the deployment's actions and
reports the score and the per-step agreement with the float spiking network (the reference simulation)
and with the policy's own ``predict`` where there is a policy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.policies import BasePolicy

from sb3_snn import backends
from sb3_snn.common.evaluation import Agreement, play_episodes
from sb3_snn.common.models import greedy_actions
from sb3_snn.common.observations import collect_observations, description_input
from sb3_snn.registry import UnknownPluginError
from sb3_snn.spiking import SpikingDescription, simulate, spiking_policy_of
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
                        help="a spiking policy file (policy.save, e.g. the converted policy of sb3-snn convert) "
                             "or a spiking description folder")
    parser.add_argument("--out", required=True, help="folder to write the artifact into")
    parser.add_argument("--episodes", type=int, default=0,
                        help="play N episodes with the deployment and report score and agreement")
    parser.add_argument("--n-calibration", type=int, default=256, help="observations collected for calibration and estimates")
    parser.add_argument("--action-rate", type=float, default=50.0,
                        help="actions per second, the cost context of every backend (nc64c: its power figure)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="backend options passed to its compile(), e.g. nc64c: weight_bits=4 neurons_per_core=256, "
                             "nir: approximate_reset=true (values parsed as JSON, else kept as text)")
    parser.add_argument("--json", default=None, help="also write the report (and episode figures) as JSON here")
    return parser


def _parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict, each value parsed as JSON (``true``, ``4``, ``[1, 2]``) or kept as text."""
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


def load_policy(args: argparse.Namespace) -> tuple[Any, SpikingDescription, Any]:
    """``(policy or None, description, vec_env or None)`` from the arguments."""
    if args.policy_file:
        path = Path(args.policy_file)
        if path.is_dir():
            policy = None
            description = SpikingDescription.from_files(path)
        else:  # any sb3-snn policy file (a converted policy, an SDN student, a CVTC policy)
            import sb3_snn  # noqa: F401  (every policy class the file may name)
            from sb3_snn.common.policy_io import load_policy

            try:
                policy = spiking_policy_of(load_policy(BasePolicy, path, device="cpu"))  # type: ignore[type-abstract]
            except (ValueError, TypeError) as exc:
                raise SystemExit(f"sb3-snn export: --policy-file {path}: {exc}") from exc
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
    try:
        policy = spiking_policy_of(experiment.model)
    except TypeError as exc:
        raise SystemExit(f"sb3-snn export: {exc}; pass the converted policy with --policy-file") from exc
    return policy, policy.spiking_description(), experiment.env


def play(env: Any, deployment: Any, preprocess: Callable[[np.ndarray], np.ndarray], policy: Any,
         episodes: int) -> dict[str, Any]:
    """Play ``episodes`` greedily with the deployment's actions (:func:`sb3_snn.common.evaluation.play_episodes`,
    unseeded: the environment goes on from where calibration left it); per-step agreement with the float
    spiking network (the reference simulation) and with the policy.

    :param env: a one-env ``VecEnv``
    :param deployment: what a backend's ``compile`` returned
    :param preprocess: raw observations -> the description's input
    :param policy: the policy behind the description (``None`` for a bare description)
    :param episodes: episodes to play
    """
    float_snn = Agreement(lambda obs: simulate(deployment.description, preprocess(obs)).actions)
    own = Agreement(policy) if policy is not None else None
    run = play_episodes(lambda obs: deployment.run(preprocess(obs)), env, episodes, epsilon=0.0, seed=None,
                        hooks=[float_snn] + ([own] if own is not None else []))
    return {
        "episodes": episodes, "steps": run.n_steps, "mean_score": float(np.mean(run.scores)),
        "std_score": float(np.std(run.scores)), "scores": run.scores,
        "agreement_with_float_snn": float_snn.matches / max(run.n_steps, 1),
        "agreement_with_policy": own.matches / max(run.n_steps, 1) if own is not None else None,
    }


def main(argv: list[str]) -> int:
    """Compile, report, save; optionally play episodes."""
    args = build_parser().parse_args(argv)
    try:
        backend = backends.load(args.backend)
    except UnknownPluginError as exc:
        print(f"sb3-snn export: {exc}", file=sys.stderr)
        return 2
    options = _parse_settings(args.set)
    try:
        backend.check_options(options)  # before anything is loaded or played: unknown names, wrong types
    except backends.BackendError as exc:
        print(f"sb3-snn export: {exc}", file=sys.stderr)
        return 2
    policy, description, env = load_policy(args)
    preprocess = description_input(description, policy)
    if env is not None:
        act = greedy_actions(policy) if policy is not None else None
        # a little exploration (epsilon 0.1) widens the calibration range
        raw = collect_observations(env, args.n_calibration, act, epsilon=0.1 if act is not None else 0.0, seed=args.seed)
    else:
        print("sb3-snn export: no --env: calibrating on Gaussian observations (give --env for a faithful input range)")
        raw = np.random.default_rng(args.seed).standard_normal((args.n_calibration, *description.input_shape))
    example_obs = preprocess(raw)
    start = time.perf_counter()
    try:
        deployment = backend.compile(description, example_obs, action_rate_hz=args.action_rate, **options)
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
        print(f"\n{args.episodes} episodes with the {report.backend} deployment: score {figures['mean_score']:.1f} "
              f"± {figures['std_score']:.1f}; agreement " + ", ".join(agreements) + f" over {figures['steps']} steps")
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2))
    return 0
