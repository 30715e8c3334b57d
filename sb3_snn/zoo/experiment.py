"""Loading what ``sb3-snn train`` / ``rl_zoo3.train`` wrote, with rl_zoo3's own helpers where they are safe.

Shared by the ``evaluate``, ``convert`` and ``export`` commands. An experiment folder may come from someone
else, so nothing in it runs code unless ``--trust-pickle`` is given: the model zip is read by
:func:`sb3_snn.common.models.load_model` (pickled entries rebuilt, never unpickled), ``config.yml`` and
``args.yml`` with a safe YAML loader (:func:`read_zoo_yaml`; rl_zoo3's ``get_saved_hyperparams`` uses
``yaml.UnsafeLoader`` and ``eval``), environment wrappers only from known packages, and ``vecnormalize.pkl``
(a pickle) is refused.
"""

from __future__ import annotations

import argparse
import ast
import os
from dataclasses import dataclass
from typing import Any

import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.common.models import load_model
from sb3_snn.zoo.algos import install_algos

#: Packages an experiment's ``env_wrapper`` / ``vec_env_wrapper`` may name without ``--trust-pickle``
#: (besides the modules given with ``--gym-packages``).
WRAPPER_PACKAGES = ("gymnasium", "stable_baselines3", "sb3_contrib", "rl_zoo3", "sb3_snn", "ale_py")


class _ZooArgsLoader(yaml.SafeLoader):
    """Reads rl_zoo3's ``args.yml`` / ``config.yml`` (``OrderedDict`` dumps) without constructing arbitrary objects."""


def _ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    (pairs,) = loader.construct_sequence(node, deep=True)
    return {key: value for key, value in pairs}


def _tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple:
    return tuple(loader.construct_sequence(node, deep=True))  # type: ignore[arg-type]


_ZooArgsLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)
_ZooArgsLoader.add_constructor("tag:yaml.org,2002:python/tuple", _tuple)


def read_zoo_yaml(path: str | os.PathLike) -> dict:
    """An rl_zoo3 run's ``args.yml`` or ``config.yml`` (``OrderedDict`` dumps) as a plain dict, read
    safely (no arbitrary objects constructed); ``{}`` for an empty file.

    :param path: the YAML file
    :raises ValueError: the file holds a tag other than plain data, ``OrderedDict`` and tuples (named), or is
        not a mapping
    """
    with open(path) as file:
        try:
            loaded = yaml.load(file, Loader=_ZooArgsLoader) or {}
        except yaml.constructor.ConstructorError as error:
            raise ValueError(f"{path}: refusing to read it: {error.problem} (a zoo YAML file holds plain data, "
                             "OrderedDict and tuples only)") from error
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of hyperparameters, got a {type(loaded).__name__}")
    return loaded


def _literal_kwargs(text: str, where: str) -> dict[str, Any]:
    """``"dict(a=1, b=True)"`` or ``"{'a': 1}"`` as a dict of literals (rl_zoo3 ``eval``s such strings)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
        if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "dict" and not tree.args:
            return {str(kw.arg): ast.literal_eval(kw.value) for kw in tree.keywords}
        value = ast.literal_eval(tree)
        if isinstance(value, dict):
            return value
    except (SyntaxError, ValueError) as error:
        raise ValueError(f"{where}: {text!r} is not a dict of literal values ({error})") from error
    raise ValueError(f"{where}: {text!r} is not a dict of literal values, e.g. dict(norm_obs=True)")


def _check_wrappers(hyperparams: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    """Refuse ``env_wrapper`` / ``vec_env_wrapper`` names outside ``allowed`` packages (rl_zoo3 imports them)."""
    for key in ("env_wrapper", "vec_env_wrapper"):
        value = hyperparams.get(key)
        names = value if isinstance(value, list) else [] if value is None else [value]
        for name in names:
            name = next(iter(name)) if isinstance(name, dict) and len(name) == 1 else name
            if not isinstance(name, str) or name.split(".")[0] not in allowed:
                raise ValueError(
                    f"{where}: {key} {name!r} is not in a known package ({', '.join(allowed)}); add its module with "
                    "--gym-packages, or pass --trust-pickle if you trust this experiment folder"
                )


def saved_hyperparams(
    stats_path: str | os.PathLike, trusted: bool = False, packages: tuple[str, ...] = ()
) -> tuple[dict[str, Any], str | None]:
    """rl_zoo3's ``get_saved_hyperparams(stats_path, test_mode=True)``, read safely.

    ``config.yml`` is read with :func:`read_zoo_yaml`; a ``normalize`` string is parsed as literals (not
    ``eval``-ed); reward normalisation is off for testing. ``normalize`` means loading ``vecnormalize.pkl``,
    a pickle, so it is refused unless ``trusted``.

    :param stats_path: the experiment's ``<env id>`` folder
    :param trusted: allow ``vecnormalize.pkl`` and wrappers from any package
    :param packages: further top-level packages wrappers may come from (``--gym-packages``)
    :return: the hyperparameters and the folder of the normalisation statistics (``None``: no folder)
    :raises ValueError: an unsafe or malformed ``config.yml`` (named), or normalisation without ``trusted``
    """
    if not os.path.isdir(stats_path):
        return {}, None
    config_file = os.path.join(stats_path, "config.yml")
    hyperparams: dict[str, Any] = read_zoo_yaml(config_file) if os.path.isfile(config_file) else {}
    normalize = hyperparams.get("normalize", False) if hyperparams else os.path.isfile(
        os.path.join(stats_path, "obs_rms.pkl"))
    hyperparams["normalize"] = normalize
    if normalize:
        if isinstance(normalize, str):
            normalize_kwargs = {**_literal_kwargs(normalize, f"{config_file}: normalize"), "norm_reward": False}
        elif isinstance(normalize, dict):
            normalize_kwargs = dict(normalize)
        else:
            normalize_kwargs = {"norm_obs": normalize, "norm_reward": False}
        hyperparams["normalize_kwargs"] = normalize_kwargs
        if not trusted:
            raise ValueError(
                f"{stats_path}: this experiment normalises observations, and its statistics (vecnormalize.pkl) are a "
                "pickle, which runs code when loaded; pass --trust-pickle if you trust this experiment folder"
            )
    if not trusted:
        _check_wrappers(hyperparams, config_file, WRAPPER_PACKAGES + tuple(packages))
    return hyperparams, str(stats_path)


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
    parser.add_argument("--trust-pickle", action="store_true",
                        help="load model zips, vecnormalize.pkl and wrappers with their own (pickle-based) loaders, "
                             "which run any code the files hold: only for files you wrote or whose author you trust")


def make_experiment_env(args: argparse.Namespace, log_path: str, n_envs: int = 1,
                        render_mode: str | None = None) -> VecEnv:
    """The experiment's evaluation ``VecEnv``, built like rl_zoo3's ``enjoy`` from its saved (safely read)
    hyperparameters and ``env_kwargs``; ``render_mode`` is added to the env kwargs when given.

    :param args: the arguments of :func:`add_experiment_arguments`
    :param log_path: the experiment folder (``logs/<algo>/<Env>_<N>``)
    """
    from huggingface_sb3 import EnvironmentName
    from rl_zoo3 import create_test_env
    from rl_zoo3.exp_manager import ExperimentManager

    env_name = EnvironmentName(args.env)
    stats_path = os.path.join(log_path, env_name)
    packages = tuple(module.split(".")[0] for module in args.gym_packages)
    try:
        hyperparams, maybe_stats_path = saved_hyperparams(
            stats_path, trusted=bool(getattr(args, "trust_pickle", False)), packages=packages)
        env_kwargs = hyperparams.pop("env_kwargs", None) or {}
        args_path = os.path.join(stats_path, "args.yml")
        if os.path.isfile(args_path):
            saved_args = read_zoo_yaml(args_path)
            env_kwargs = saved_args.get("env_kwargs") or env_kwargs
    except ValueError as exc:
        raise SystemExit(f"sb3-snn: {exc}") from exc
    if render_mode is not None:
        env_kwargs = {**env_kwargs, "render_mode": render_mode}
    return create_test_env(
        env_name.gym_id,
        n_envs=n_envs,
        stats_path=maybe_stats_path,
        seed=args.seed,
        log_dir=None,
        should_render=render_mode == "human",
        hyperparams=hyperparams,
        env_kwargs=env_kwargs,
        vec_env_cls=ExperimentManager.default_vec_env_cls,
    )


def load_experiment(args: argparse.Namespace, n_envs: int = 1) -> ZooExperiment:
    """Find, load and wrap the experiment that ``args`` (see :func:`add_experiment_arguments`) names."""
    import importlib

    from huggingface_sb3 import EnvironmentName
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

    trusted = bool(getattr(args, "trust_pickle", False))
    env = make_experiment_env(args, log_path, n_envs=n_envs)
    try:
        model = load_model(model_path, algo=args.algo, env=env, device=args.device, trusted=trusted, seed=args.seed)
    except ValueError as exc:  # an unsafe entry, another algorithm's policy, spaces that do not match
        env.close()
        raise SystemExit(f"sb3-snn: {exc}") from exc
    return ZooExperiment(model=model, env=env, model_path=model_path, log_path=log_path)
