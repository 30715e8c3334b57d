"""Loading what ``sb3-snn train`` / ``rl_zoo3.train`` wrote, with rl_zoo3's own helpers.

Shared by the ``evaluate``, ``convert`` and ``export`` commands.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.zoo.algos import install_algos

#: Algorithms that keep a replay buffer: loading them for evaluation needs only a tiny one.
OFF_POLICY = {"dqn", "ddqn", "qrdqn", "ddpg", "sac", "td3", "tqc", "sdn"}


class _ZooArgsLoader(yaml.SafeLoader):
    """Reads rl_zoo3's ``args.yml`` (an ``OrderedDict`` dump) without constructing arbitrary objects."""


def _ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    (pairs,) = loader.construct_sequence(node, deep=True)
    return {key: value for key, value in pairs}


_ZooArgsLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)


def read_zoo_yaml(path: str | os.PathLike) -> dict:
    """An rl_zoo3 run's ``args.yml`` or ``config.yml`` (``OrderedDict`` dumps) as a plain dict, read
    safely (no arbitrary objects constructed); ``{}`` for an empty file.

    :param path: the YAML file
    """
    with open(path) as file:
        return yaml.load(file, Loader=_ZooArgsLoader) or {}


@dataclass
class ZooExperiment:
    """A trained agent found in an rl_zoo3 log folder, with an environment made like its training one.

    :param model: the loaded SB3 model
    :param env: a ``VecEnv`` built from the saved hyperparameters (wrappers, frame stack, normalisation)
    :param model_path: the ``.zip`` that was loaded
    :param log_path: the experiment folder (``logs/<algo>/<Env>_<N>``)
    """

    model: BaseAlgorithm
    env: VecEnv
    model_path: str
    log_path: str


def add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags rl_zoo3's ``enjoy`` uses to find an experiment."""
    parser.add_argument("--algo", required=True, help="algorithm id the agent was trained with (e.g. dqn, ddqn)")
    parser.add_argument("--env", required=True, help="environment id (e.g. CartPole-v1)")
    parser.add_argument("-f", "--folder", default="logs", help="log folder of the training run")
    parser.add_argument("--exp-id", type=int, default=0, help="experiment id (0: latest, -1: no exp folder)")
    parser.add_argument("--load-best", action="store_true", help="load best_model.zip instead of the last model")
    parser.add_argument("--load-checkpoint", type=int, default=None, help="load the checkpoint of this step count")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation environment")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--gym-packages", nargs="+", default=[], help="modules to import to register environments")


def load_experiment(args: argparse.Namespace, n_envs: int = 1) -> ZooExperiment:
    """Find, load and wrap the experiment that ``args`` (see :func:`add_experiment_arguments`) names."""
    import importlib

    from huggingface_sb3 import EnvironmentName
    from rl_zoo3 import create_test_env, get_saved_hyperparams
    from rl_zoo3.exp_manager import ExperimentManager
    from rl_zoo3.utils import get_model_path

    import rl_zoo3.import_envs  # noqa: F401  (registers the zoo's environments, Atari included)

    algos = install_algos()
    if args.algo not in algos:
        raise SystemExit(f"unknown algorithm {args.algo!r}; known: {', '.join(sorted(algos))}")
    for module in args.gym_packages:
        importlib.import_module(module)
    env_name = EnvironmentName(args.env)
    try:
        _, model_path, log_path = get_model_path(
            args.exp_id, args.folder, args.algo, env_name, args.load_best, args.load_checkpoint
        )
    except (AssertionError, ValueError) as exc:
        raise SystemExit(f"no trained {args.algo} agent for {args.env} in {args.folder!r}: {exc}") from exc

    stats_path = os.path.join(log_path, env_name)
    hyperparams, maybe_stats_path = get_saved_hyperparams(stats_path, test_mode=True)
    env_kwargs = hyperparams.pop("env_kwargs", None) or {}
    args_path = os.path.join(stats_path, "args.yml")
    if os.path.isfile(args_path):
        saved_args = read_zoo_yaml(args_path)
        env_kwargs = saved_args.get("env_kwargs") or env_kwargs

    env = create_test_env(
        env_name.gym_id,
        n_envs=n_envs,
        stats_path=maybe_stats_path,
        seed=args.seed,
        log_dir=None,
        should_render=False,
        hyperparams=hyperparams,
        env_kwargs=env_kwargs,
        vec_env_cls=ExperimentManager.default_vec_env_cls,
    )
    kwargs: dict[str, Any] = {"seed": args.seed}
    custom_objects: dict[str, Any] = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    if args.algo in OFF_POLICY:
        kwargs["buffer_size"] = 1
        custom_objects["optimize_memory_usage"] = False
    model = algos[args.algo].load(model_path, env=env, custom_objects=custom_objects, device=args.device, **kwargs)
    return ZooExperiment(model=model, env=env, model_path=model_path, log_path=log_path)
